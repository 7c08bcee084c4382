"""The ``unicl`` pretraining method: registration, data, one training step, its files."""
from __future__ import annotations

import json

import torch

import components.pretrain.unicl  # noqa: F401  (registers the method)
from components.imagetext.model import load_towers
from components.pretrain.registry import get_method


def _batch(model, cfg, n: int = 8) -> dict[str, torch.Tensor]:
    dataset, paths = model.make_dataset(cfg)
    assert len(dataset) == len(paths) == len(model.pairs)
    items = [dataset[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_registered_with_the_custom_data_contract(tiny_cfg):
    spec = get_method("unicl")
    assert spec.data == "custom" and spec.backbones is None
    assert spec.inputs == ("image", "input_ids", "attention_mask", "label")
    model = spec.build(tiny_cfg())
    assert model.record["holdout_mentions"] == 0      # the curated train names no held-out phrase
    assert model.describe()["pairs"] == len(model.pairs) > 0


def test_one_step_decreases_the_loss(tiny_cfg):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = get_method("unicl").build(cfg)
    batch = _batch(model, cfg)
    assert list(batch)[0] == "image" and batch["image"].shape == (8, 3, 64, 64)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (8, 48)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # one plain gradient step
    before = model(batch)
    assert {"loss", "loss_i2t", "loss_t2i", "tau", "i2t_acc", "positives"} <= set(before)
    before["loss"].backward()
    opt.step()
    with torch.no_grad():
        after = model(batch)["loss"]
    assert after < before["loss"].detach()


def test_save_extra_and_reload_reproduce_the_embeddings(tiny_cfg, tmp_path):
    from components.imagetext.tokenizer import encode

    cfg = tiny_cfg()
    model = get_method("unicl").build(cfg)
    batch = _batch(model, cfg)
    model(batch)["loss"].backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()  # not the initial weights any more
    model.eval()
    # what the stage writes: the backbone (its family's format) + save_extra
    model.towers.family.save_weights(model.backbone, tmp_path / "backbone.safetensors")
    model.save_extra(tmp_path)
    for name in ("text_encoder.safetensors", "image_head.safetensors", "tokenizer.json",
                 "unicl.json"):
        assert (tmp_path / name).is_file(), name
    record = json.loads((tmp_path / "unicl.json").read_text())
    assert record["image"]["arch"] == cfg.arch and record["text"]["width"] == 32

    towers, tokenizer, _ = load_towers(tmp_path)
    assert tokenizer.to_str() == model.tokenizer.to_str()
    ids, mask = encode(tokenizer, ["a picture of a red star.", "two circles."], 48)
    with torch.no_grad():
        assert torch.allclose(towers.encode_text(ids, mask), model.towers.encode_text(ids, mask),
                              atol=1e-6)
        assert torch.allclose(towers.encode_image(batch["image"]),
                              model.towers.encode_image(batch["image"]), atol=1e-5)
    assert torch.allclose(towers.logit_scale, model.towers.logit_scale)


def test_every_backbone_family_is_an_image_tower(tiny_cfg):
    """The method takes any registered family (``backbones=None``): one step on each."""
    from components.models.backbones import BACKBONES

    for name, family in BACKBONES.items():
        size = next(iter(family.variants))
        cfg = tiny_cfg()
        cfg.backbone, cfg.size = name, size
        cfg.arch = cfg.arch if name == "vit" else {}
        model = get_method("unicl").build(cfg)
        out = model(_batch(model, cfg, n=4))
        out["loss"].backward()
        assert torch.isfinite(out["loss"]), name
        assert model.backbone.__class__ is family.module, name
