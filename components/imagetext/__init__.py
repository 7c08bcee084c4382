"""Image-text pretraining and transfer: Florence's UniCL (arXiv 2111.11432) on curated captions.

Layout: :mod:`.tokenizer` (byte-level BPE trained on the curated train captions), :mod:`.text`
(the text transformer), :mod:`.loss` (UniCL's label-aware bidirectional contrastive loss),
:mod:`.model` (image + text towers and their files), :mod:`.data` (curated pairs, UniCL labels,
caption concepts), :mod:`.crops` (ground-truth object crops), :mod:`.zeroshot` (prompt
ensembles), :mod:`.evaluate` (zero-shot / linear probe / few-shot, report), ``__main__`` (CLI +
MLflow). The pretraining method itself is :mod:`components.pretrain.unicl` (``--method unicl``).

Nothing is imported here: :mod:`components.pretrain` imports these modules, and they import
that package only inside functions, so either package may be imported first.

CLI: ``python -m components.imagetext evaluate --params params.yaml [--set k=v]``.
"""
