"""Rebuild the detector from a resolved config file, without weights.

Used by the evaluation stage and by the tracking stage's MLflow pyfunc model, which then loads
``final/model.safetensors`` into it (``safetensors.torch.load_file`` + ``load_state_dict``).
"""
from __future__ import annotations

import copy
from pathlib import Path

from torch import nn

__all__ = ["build_detector"]


def build_detector(config_path: str | Path) -> nn.Module:
    """mmdet detector for ``config_path`` (e.g. ``<work_dir>/final/config.py``), eval mode.

    ``model.cfg`` is the Config and ``model.dataset_meta == {'classes': (...)}`` so
    ``mmdet.apis.inference_detector(model, image)`` works once weights are loaded. Nothing is
    read besides the config: the backbone's ``pretrained`` file is not loaded.
    """
    import components.models  # noqa: F401  (registers PlainViT / ViTFPNAdapter)
    import components.train  # noqa: F401  (registers our optimizer/hook types named in configs)
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(str(config_path))
    init_default_scope(cfg.get("default_scope", "mmdet"))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pretrained = None
    model = MODELS.build(model_cfg)
    model.cfg = cfg
    classes = cfg.get("metainfo", {}).get("classes") or \
        cfg.test_dataloader.dataset.metainfo["classes"]
    model.dataset_meta = {"classes": tuple(classes)}
    model.eval()
    return model
