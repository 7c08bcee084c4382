"""Fine-tuning stage: ViT + Mask R-CNN through mmengine's Runner (``python -m components.train``).

Importing the package registers this stage's mmengine components (configs list it in
``custom_imports``): the ``LayerDecayOptimWrapperConstructor`` and ``FiniteLossOptimWrapper``
(:mod:`.optim`), the ``MLflowMetricsHook`` / ``NonFiniteLossGuardHook`` / ``RunStateHook``
(:mod:`.hooks`) and the ``vitdet-trusted://`` checkpoint scheme (:mod:`.resume`).

Public API: :func:`components.train.config.build_config`,
:func:`components.train.finetune.finetune`, :func:`components.train.build.build_detector`.
"""
from components.train import hooks, optim, resume  # noqa: F401  (registration side effects)
