"""Fine-tuning stage: Mask R-CNN on a registered backbone through mmengine's Runner (``python -m components.train``).

Importing the package registers this stage's mmengine components (configs list it in
``custom_imports``): the ``LayerDecayOptimWrapperConstructor`` and ``FiniteLossOptimWrapper``
(:mod:`.optim`), the ``MLflowMetricsHook`` / ``NonFiniteLossGuardHook`` / ``RunStateHook``
(:mod:`.hooks`), the ``vitdet-trusted://`` checkpoint scheme (:mod:`.resume`), and the
dataset / mask head / metric that honour the COCO record contract (:mod:`.contract`).

Public API: :func:`components.train.config.build_config`,
:func:`components.train.finetune.finetune`, :func:`components.train.build.build_detector`.
"""
from components.train import contract, hooks, optim, resume  # noqa: F401  (registration side effects)
