"""MoCo-v2 and BYOL (object-aware cropping's SSL methods): losses, queue, EMA, stage runs."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from pretrain_helpers import tiny_cfg
from safetensors.torch import load_file
from torch import nn

from components.pretrain.byol import byol_loss
from components.pretrain.mocov2 import MoCoV2Pretrainer, moco_logits
from components.pretrain.stage import run
from components.pretrain.twoview import ema_update


def test_moco_logits_put_the_positive_first_and_scale_by_temperature():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[2.0, 0.0]])           # same direction: cosine 1
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    logits = moco_logits(q, k, queue, temperature=0.5)
    assert torch.allclose(logits, torch.tensor([[2.0, 0.0, -2.0]]))


def test_byol_loss_is_zero_for_aligned_and_four_for_opposite_vectors():
    p = torch.tensor([[1.0, 2.0]])
    assert byol_loss(p, 3 * p).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_loss(p, -p).item() == pytest.approx(4.0)


def test_ema_update_moves_the_target_towards_the_online_weights():
    online, target = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(0.0)
    ema_update(online, target, 0.9)
    assert torch.allclose(target.weight, torch.full_like(target.weight, 0.1))


def test_moco_queue_wraps_around():
    from components.pretrain.common import build_backbone

    backbone = build_backbone("tiny", 64, arch={"embed_dim": 32, "depth": 1, "num_heads": 2})
    model = MoCoV2Pretrainer(backbone, 32, proj_dim=4, mlp_dim=8, queue_size=5)
    model._enqueue(torch.eye(4))
    model._enqueue(2 * torch.eye(4)[:3])
    assert int(model.queue_ptr) == 2
    assert torch.allclose(model.queue[4], torch.eye(4)[0])  # second batch's first key at slot 4
    assert torch.allclose(model.queue[0], torch.eye(4)[1])  # wrapped to the front


@pytest.mark.parametrize("method,policy,boxes", [("mocov2", "obj_obj_dilate", "gt"),
                                                 ("byol", "scene_scene", "gt")])
def test_two_view_methods_train_a_resnet_with_a_crop_policy(method, policy, boxes,
                                                            pretrain_ds: Path, tmp_path: Path):
    cfg = tiny_cfg(method, pretrain_ds, tmp_path, steps=2, mlp_dim=32, proj_dim=16,
                   crops={"policy": policy, "boxes": boxes})
    if method == "mocov2":
        cfg.options["queue_size"] = 16
    cfg.backbone, cfg.size, cfg.arch = "resnet", "r18", {}
    meta = run(cfg, progress=False)
    assert meta["steps"] == 2 and math.isfinite(meta["final_loss"])
    assert meta["images"] == 8 and meta["data_hash"].startswith("sha256:")
    assert meta["options"]["crops"]["policy"] == policy
    saved = load_file(str(cfg.out_dir / "backbone.safetensors"))
    assert any(k.startswith("layer4.") for k in saved)  # the detector's ResNet names


def test_byol_runs_on_the_vit(pretrain_ds: Path, tmp_path: Path):
    cfg = tiny_cfg("byol", pretrain_ds, tmp_path, steps=2, mlp_dim=32, proj_dim=16,
                   crops={"policy": "obj_scene", "boxes": "gt"})
    meta = run(cfg, progress=False)
    assert math.isfinite(meta["final_loss"]) and meta["backbone"] == "vit"
    assert "pos_embed" in load_file(str(cfg.out_dir / "backbone.safetensors"))


def test_bing_crops_without_a_proposal_cache_say_what_to_run(pretrain_ds: Path, tmp_path: Path):
    cfg = tiny_cfg("mocov2", pretrain_ds, tmp_path, steps=1, mlp_dim=32, proj_dim=16,
                   crops={"policy": "obj_scene", "boxes": "bing"},
                   proposals=str(tmp_path / "no-proposals"))
    with pytest.raises(SystemExit, match="dvc repro proposals"):
        run(cfg, progress=False)
    assert not cfg.out_dir.exists()  # nothing half-written
