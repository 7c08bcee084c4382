"""Florence-style data curation (arXiv 2111.11432) of the dataset's image-caption pairs.

Input: the dataset folder (``data.out``; :mod:`components.data.layout`):
``captions/<split>.jsonl`` pairs, the class vocabulary from ``annotations/instances_*.json``
categories or ``openimages/class-descriptions.csv`` (or ``curation.vocabulary``).

Output (the contract ``components/imagetext`` reads), written atomically:

* ``data/curated/<split>.jsonl`` (train, val, test), one kept pair per line, input order::

      {"caption": str, "image": <path relative to the dataset's images/>,
       "labels": [class names the caption mentions, sorted], "sha256": <image file sha256>}

* ``data/curated/manifest.json``: ``source`` (dataset path, manifest ``content_hash``,
  ``dvc_hash``), ``params`` (the curation section used), ``vocabulary``, ``holdout``,
  ``splits`` (in / kept / removed by reason), ``files`` (sha256 of each JSONL);
* ``results/curation/{report.md,counts.json,metrics.json}``.

Train captions never mention a ``curation.holdout`` phrase; val/test keep them (zero-shot).
The curated set must pass :mod:`components.validation.suites.curated` before it is written.

Layout: :mod:`.config` (params + defaults), :mod:`.text` (caption checks), :mod:`.labels`
(vocabulary, plurals, phrase matching), :mod:`.images` (sha256, pHash, near-duplicate index),
:mod:`.filters` (the rules, one reason per removal), :mod:`.stage` (read -> curate -> validate
-> write), :mod:`.report`, ``__main__`` (CLI + MLflow). No orchestration imports.

CLI: ``python -m components.curation --params params.yaml [--set k=v] [--no-tracking]``.
"""
from components.curation.config import CURATION_DEFAULTS, CurationConfig
from components.curation.filters import REASONS

__all__ = ["CURATION_DEFAULTS", "REASONS", "CurationConfig"]
