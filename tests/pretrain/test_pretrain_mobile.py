"""Classification pretraining of the mobile backbones (MobileViT paper: ImageNet classification
before SSDLite): the ``supervised`` method on any registered family, and its weights load into
the SSDLite detector's backbone."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pretrain_helpers import tiny_cfg
from safetensors.torch import load_file

from components.models.backbones import BACKBONES
from components.pretrain.stage import run


@pytest.mark.parametrize("family,size", [("mobilevit", "xxs"), ("mobilenetv2", "0.5")])
def test_supervised_pretrains_a_mobile_backbone_for_ssdlite(family, size, pretrain_ds: Path,
                                                             tmp_path: Path):
    cfg = tiny_cfg("supervised", pretrain_ds, tmp_path, steps=2)
    cfg.backbone, cfg.size, cfg.arch = family, size, {}
    meta = run(cfg, progress=False)
    assert meta["steps"] == 2 and meta["final_loss"] == meta["final_loss"]  # finite
    weights = cfg.out_dir / "backbone.safetensors"
    spec = BACKBONES[family]
    # the detector's backbone (SSDLite reads strides 16/32 of the same body) loads every tensor
    detector_backbone = spec.build(spec.config({"size": size, "checkpoint": str(weights)}))
    fresh = {k: v.clone() for k, v in detector_backbone.state_dict().items()}
    detector_backbone.init_weights()
    report_state = detector_backbone.state_dict()
    saved = load_file(str(weights))
    assert set(saved) == set(report_state)
    assert all(torch.equal(saved[k], report_state[k]) for k in saved)
    assert any(not torch.equal(fresh[k], report_state[k]) for k in saved)
