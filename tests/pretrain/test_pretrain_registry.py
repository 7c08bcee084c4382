"""Registry sweep: every method trains 2 steps and writes a checkpoint the detector loads."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from pretrain_helpers import IMG, NEEDS_STAGE_DATA, TINY_ARCH, tiny_cfg
from safetensors.torch import load_file

import components.pretrain as pretrain
from components.models.backbones.vit import ViT
from components.models.weights import load_backbone_weights
from components.pretrain.stage import run

METHODS = sorted(m for m in pretrain.METHODS if m not in NEEDS_STAGE_DATA)


def test_registry_has_the_five_methods() -> None:
    assert set(METHODS) >= {"random", "supervised", "mocov3", "mae", "beit"}
    with pytest.raises(KeyError, match="known"):
        pretrain.get_method("simclr")


@pytest.fixture(scope="module")
def trained(pretrain_ds: Path, tokenizer_file: Path, tmp_path_factory) -> dict[str, Path]:
    """Run every registered method once (2 steps) into one output folder."""
    out = tmp_path_factory.mktemp("sweep")
    for name in METHODS:
        extra = {"tokenizer": str(tokenizer_file)} if name == "beit" else {}
        run(tiny_cfg(name, pretrain_ds, out, **extra), progress=False)
    return {name: out / name for name in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_and_writes_outputs(method: str, trained: dict[str, Path],
                                         pretrain_ds: Path) -> None:
    folder = trained[method]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["method"] == method and meta["img_size"] == IMG and meta["grid"] == [4, 4]
    assert (folder / "loss_curve.png").stat().st_size > 1000
    assert not list(folder.parent.glob(f".{method}.partial-*"))  # atomic: no leftovers
    rows = list(csv.DictReader((folder / "loss.csv").open()))
    if pretrain.get_method(method).data == "none":
        assert meta["steps"] == 0 and meta["final_loss"] is None and rows == []
        return
    assert meta["steps"] == 2 and len(rows) == 2
    losses = [float(r["loss"]) for r in rows]
    assert all(math.isfinite(v) for v in losses)
    assert losses[1] != losses[0], f"{method}: loss did not change after one step: {losses}"
    n_expected = 8
    assert meta["images"] == n_expected and meta["images_seen"] == 8
    assert meta["data_hash"].startswith("sha256:") and meta["throughput_img_s"] > 0


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_loads_into_plainvit(method: str, trained: dict[str, Path]) -> None:
    path = trained[method] / "backbone.safetensors"
    saved = load_file(str(path))
    # Same pretraining grid, detection attention layout: every key, no resize, same tensors.
    same = ViT("tiny", **TINY_ARCH, pretrain_img_size=IMG, attention="hybrid")
    report = load_backbone_weights(same, path)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert report.loaded == len(same.state_dict()) == len(saved)
    assert report.interpolated == {}
    for key, value in same.state_dict().items():
        assert torch.equal(value, saved[key]), key
    # Another grid (detector pretrained at 32 px): pos_embed is interpolated, nothing missing.
    other = ViT("tiny", **TINY_ARCH, pretrain_img_size=IMG // 2, attention="hybrid")
    report = load_backbone_weights(other, path)
    assert report.missing == [] and report.unexpected == []
    assert report.interpolated["pos_embed"] == ((1, 16, 32), (1, 4, 32))


def test_pretraining_changed_the_weights(trained: dict[str, Path]) -> None:
    """Each trained method moved the blocks away from the random init of the same seed."""
    init = load_file(str(trained["random"] / "backbone.safetensors"))
    for method in METHODS:
        if method == "random":
            continue
        got = load_file(str(trained[method] / "backbone.safetensors"))
        assert not torch.equal(got["blocks.0.attn.qkv.weight"], init["blocks.0.attn.qkv.weight"]), method


def test_random_init_is_seeded(pretrain_ds: Path, tmp_path: Path) -> None:
    a = run(tiny_cfg("random", pretrain_ds, tmp_path / "a"), progress=False)
    run(tiny_cfg("random", pretrain_ds, tmp_path / "b"), progress=False)
    cfg = tiny_cfg("random", pretrain_ds, tmp_path / "c")
    cfg.seed = 1
    run(cfg, progress=False)
    sa, sb, sc = (load_file(str(tmp_path / d / "random" / "backbone.safetensors")) for d in "abc")
    assert a["steps"] == 0 and a["images"] == 0
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["blocks.0.mlp.fc1.weight"], sc["blocks.0.mlp.fc1.weight"])
    # The documented scheme: trunc-normal(std 0.02) weights (torch's default cut at +-2, i.e.
    # effectively untruncated, as timm/MAE), zero biases, unit LayerNorms.
    w = sa["blocks.0.mlp.fc1.weight"]
    assert abs(float(w.std()) - 0.02) < 0.003 and abs(float(w.mean())) < 0.002
    assert torch.count_nonzero(sa["blocks.0.mlp.fc1.bias"]) == 0
    assert torch.equal(sa["blocks.0.norm1.weight"], torch.ones(TINY_ARCH["embed_dim"]))


@pytest.mark.parametrize("method", [m for m in METHODS if pretrain.get_method(m).data != "none"])
def test_transform_yields_the_registered_inputs(method: str, pretrain_ds: Path, tokenizer_file: Path,
                                                tmp_path: Path) -> None:
    from PIL import Image

    spec = pretrain.get_method(method)
    extra = {"tokenizer": str(tokenizer_file)} if "tokenizer" in spec.requires else {}
    cfg = tiny_cfg(method, pretrain_ds, tmp_path, **extra)
    model = spec.build(cfg)
    if spec.data == "custom":  # the method reads its own samples (boxes for object-aware crops)
        dataset, paths = model.make_dataset(cfg)
        sample = dataset[0]
        assert len(paths) == len(dataset) > 0
    else:
        sample = model.make_transform()(Image.new("RGB", (96, 80), (200, 30, 30)))
    assert set(sample) == set(spec.inputs)
    assert all(v.shape == (3, IMG, IMG) and v.dtype == torch.float32 for v in sample.values())
