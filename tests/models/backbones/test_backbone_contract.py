"""Every registered backbone family keeps the contract (components/models/backbones/base.py).

The sweep: build the smallest variant from its params-driven config, forward a small image,
check the outputs against ``output_shape()`` and the necks' pyramid against ``pyramid()``,
and round-trip the weights through the family's own save/load. A new family passes these
tests by registering, with no test code of its own.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from components.models.backbones import BACKBONES, family_of, get_backbone
from components.models.adapter import ViTFPNAdapter

FAMILIES = list(BACKBONES)
IMG = 64


def _params(name: str, **extra) -> dict:
    family = BACKBONES[name]
    return {"backbone": name, "size": next(iter(family.variants)), "pretrain_img_size": IMG,
            "checkpoint": "", **extra}


def _build(name: str, seed: int = 0, **extra) -> torch.nn.Module:
    family = BACKBONES[name]
    torch.manual_seed(seed)
    module = family.build(family.config(_params(name, **extra)))
    if hasattr(module, "init_weights"):
        module.init_weights()
    module.eval()  # (mmdet's ResNet.train returns None: no chaining)
    return module


def _image(h: int = IMG, w: int = IMG) -> torch.Tensor:
    return torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(1))


def test_registry_lists_the_families_and_explains_unknown_names():
    assert "vit" in FAMILIES
    assert "resnet" in FAMILIES  # mmdet is installed in the project's venv
    with pytest.raises(KeyError, match=r"unknown backbone 'nope'; known: vit, resnet"):
        get_backbone("nope")
    with pytest.raises(KeyError, match="is not a vit variant; known"):
        BACKBONES["vit"].config({"size": "huge"})


@pytest.mark.parametrize("name", FAMILIES)
def test_outputs_match_output_shape(name):
    family = BACKBONES[name]
    cfg = family.config(_params(name))
    shape = family.output_shape(cfg)
    with torch.no_grad():
        outs = _build(name)(_image(IMG, IMG + 32))
    assert len(outs) == len(shape)
    for out, (channels, stride) in zip(outs, shape.values()):
        assert tuple(out.shape) == (2, channels, IMG // stride, (IMG + 32) // stride)
    assert family_of(_build(name)) is family


@pytest.mark.parametrize("name", FAMILIES)
def test_pyramid_necks_produce_the_declared_pyramid(name):
    """What the detection config feeds the FPN: the family's necks on its outputs."""
    family = BACKBONES[name]
    cfg = family.config(_params(name))
    necks, pyramid = family.pyramid(cfg, _params(name))
    with torch.no_grad():
        feats = _build(name)(_image())
        for neck in necks:
            assert neck.pop("type") == "ViTFPNAdapter"  # the only pre-FPN neck so far
            feats = ViTFPNAdapter(**neck)(feats)
    strides = [s for _, s in pyramid.values()]
    assert strides == sorted(strides) and len(set(strides)) == len(strides)
    for feat, (channels, stride) in zip(feats, pyramid.values()):
        assert tuple(feat.shape) == (2, channels, IMG // stride, IMG // stride)


@pytest.mark.parametrize("name", FAMILIES)
def test_weights_round_trip(name, tmp_path: Path):
    family = BACKBONES[name]
    src, dst = _build(name, seed=0), _build(name, seed=1)
    with torch.no_grad():
        before = dst(_image())[-1]
        path = family.save_weights(src, tmp_path / name / "backbone.safetensors")
        report = family.load_weights(dst, path)
        assert report.loaded == len(src.state_dict())
        assert not (report.missing or report.unexpected or report.mismatched)
        assert not torch.allclose(before, dst(_image())[-1])
        for a, b in zip(src(_image()), dst(_image())):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", FAMILIES)
def test_checkpoint_param_is_loaded_by_init_weights(name, tmp_path: Path):
    """``model.checkpoint`` reaches the module as ``pretrained`` and loads safely on init."""
    family = BACKBONES[name]
    src = _build(name, seed=0)
    path = family.save_weights(src, tmp_path / "w.safetensors")
    dst = _build(name, seed=1, checkpoint=str(path))
    for key, value in src.state_dict().items():
        assert torch.equal(value, dst.state_dict()[key]), key


def test_resnet_variants_have_the_reference_parameter_counts():
    """ResNet-18/50 feature extractors (no fc): 11.18M / 23.51M parameters."""
    counts = {}
    for size in ("r18", "r50"):
        family = BACKBONES["resnet"]
        module = family.build(family.config({"size": size}))
        counts[size] = sum(p.numel() for p in module.parameters())
    assert counts == {"r18": 11_176_512, "r50": 23_508_032}
