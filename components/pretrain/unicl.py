"""``unicl``: Florence-style unified image-text-label contrastive pretraining (UniCL).

Florence (Yuan et al., arXiv 2111.11432, Sec. 3.2) pretrains its image tower with UniCL (Yang et
al., arXiv 2204.03610): a CLIP-style two-tower model whose bidirectional contrastive loss treats
every pair of a batch that shares a *label* as a positive (the target is uniform over a row's
positives; with one label per pair it is CLIP's InfoNCE). Here:

* image tower: the registered backbone (``pretrain.backbone``, default the ViT) pooled by its
  family's ``pooled_features`` -> LayerNorm -> linear projection to ``embed_dim``. The trunk
  is saved as ``backbone.safetensors`` with the detector's key names: one more detection
  initialisation beside random / supervised / mocov3 / mae / beit / ...;
* text tower: a small transformer over a byte-level BPE tokenizer trained on the curated
  train captions when the method builds (:mod:`components.imagetext.text`, ``.tokenizer``);
* loss: :func:`components.imagetext.loss.unicl_loss`, learnable temperature (logit scale
  init 1/0.07, capped at 100);
* label of a pair: :func:`components.imagetext.data.label_keys`, default ``concepts`` (the
  sorted set of class names and colour-class compositions the caption names; pairs naming the
  same coloured objects are positives), ``labels`` (the curated shape-name set) or ``pair``
  (CLIP);
* data: ``<pretrain.unicl.curated>/train.jsonl`` (set it to ``curation.out``), images from
  ``<data.out>/images/``. Augmentation: a mild random resized crop only (scale ``crop_scale``,
  aspect 0.9-1.1). No horizontal flip (captions say "to the left of") and no colour jitter
  (captions name colours).

Why the shared PyTorch loop (:func:`components.pretrain.engine.fit`) and not mmengine: the step
is one forward of two towers and one loss, with no evaluation hooks or detection pipeline to
reuse; the loop gives this method the same AdamW / warmup + cosine / clipping / bf16 as every
other initialisation (comparable inits), runs on the torch-only GPU box, and writes
safetensors, not mmengine's pickled checkpoints.

Shapes::

    image (B, 3, S, S) -> u (B, D);  input_ids, attention_mask (B, L) -> v (B, D)
    label (B,) -> positives (B, B);  logits = tau * u v^T (B, B)
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from components.common.env import project_relative
from components.imagetext.data import (Concepts, Pair, label_ids, label_keys, read_manifest,
                                       read_pairs)
from components.imagetext.loss import MAX_LOGIT_SCALE, positive_mask, unicl_loss
from components.imagetext.model import UniCL, build_towers
from components.imagetext.text import TextConfig
from components.imagetext.tokenizer import encode, train_tokenizer
from components.pretrain.config import PretrainConfig, resolve_path
from components.pretrain.data import ImageDataset, normalize
from components.pretrain.registry import register_method

__all__ = ["UniCLPretrainer", "PairDataset", "pair_transform", "build"]


def pair_transform(img_size: int, crop_scale: Sequence[float] = (0.8, 1.0)):
    """PIL image -> ``{"image": (3, S, S)}``: mild random resized crop + normalise (no flip,
    no colour jitter: the captions name sides and colours)."""
    from torchvision import transforms as T

    pipe = T.Compose([
        T.RandomResizedCrop(img_size, scale=tuple(crop_scale), ratio=(0.9, 1.1),
                            interpolation=T.InterpolationMode.BICUBIC),
        normalize(),
    ])
    return lambda img: {"image": pipe(img)}


class PairDataset(Dataset):
    """Images (decoded once, cached) + pre-tokenised captions + label ids.

    Item: ``{"image": (3, S, S), "input_ids": (L,), "attention_mask": (L,), "label": ()}``.
    """

    def __init__(self, paths: Sequence[Path], transform, ids: torch.Tensor, mask: torch.Tensor,
                 labels: Sequence[int]) -> None:
        self.images = ImageDataset(paths, transform)
        self.ids, self.mask = ids, mask
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        out = self.images[i]
        out.update(input_ids=self.ids[i], attention_mask=self.mask[i], label=self.labels[i])
        return out


class UniCLPretrainer(nn.Module):
    """UniCL towers + their training data.

    Args:
        towers: the image and text towers (:class:`components.imagetext.model.UniCL`).
        tokenizer: the caption tokenizer (trained on ``pairs``).
        pairs: the curated train pairs; ``labels``: their UniCL label ids.
        paths: the pairs' image files.
        img_size / crop_scale: data pipeline.
        record: what ``unicl.json`` records besides the towers (image tower, vocabulary, ...).
    """

    def __init__(self, towers: UniCL, tokenizer, pairs: Sequence[Pair], labels: Sequence[int],
                 paths: Sequence[Path], *, img_size: int, crop_scale: Sequence[float],
                 record: dict[str, Any]) -> None:
        super().__init__()
        self.towers = towers
        self.tokenizer = tokenizer
        self.pairs, self.labels, self.paths = list(pairs), list(labels), list(paths)
        self.img_size, self.crop_scale = int(img_size), tuple(crop_scale)
        self.record = dict(record)

    @property
    def backbone(self) -> nn.Module:
        return self.towers.backbone

    def make_transform(self):
        return pair_transform(self.img_size, self.crop_scale)

    def make_dataset(self, cfg: PretrainConfig) -> tuple[Dataset, list[Path]]:
        ids, mask = encode(self.tokenizer, [p.caption for p in self.pairs],
                           self.towers.text_cfg.max_len)
        return PairDataset(self.paths, self.make_transform(), ids, mask, self.labels), self.paths

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        u = self.towers.encode_image(batch["image"])
        v = self.towers.encode_text(batch["input_ids"], batch["attention_mask"])
        out = unicl_loss(u, v, batch["label"], self.towers.logit_scale)
        with torch.no_grad():
            pos = positive_mask(batch["label"])
            best = (u.float() @ v.float().t()).argmax(dim=1)
            out["i2t_acc"] = pos[torch.arange(len(pos)), best].float().mean()
            out["positives"] = pos.float().sum(dim=1).mean()
        return out

    @torch.no_grad()
    def after_step(self, step: int, total: int) -> None:
        """Keep the log-scale parameter in ``[0, log 100]`` (CLIP's clipping of tau)."""
        self.towers.logit_scale.clamp_(0.0, float(torch.log(torch.tensor(MAX_LOGIT_SCALE))))

    def save_extra(self, folder: Path) -> None:
        self.towers.save_heads(folder, self.tokenizer, self.record)

    def describe(self) -> dict[str, Any]:
        return {"pairs": len(self.pairs), "unicl_labels": len(set(self.labels)),
                "vocab_size": self.tokenizer.get_vocab_size(),
                **{k: self.record[k] for k in ("label_key", "holdout", "holdout_mentions")}}


def _vocabulary(manifest: dict, cfg: PretrainConfig) -> list[str]:
    vocab = list(manifest.get("vocabulary") or [])
    if not vocab:
        from components.curation.labels import dataset_vocabulary

        vocab = dataset_vocabulary(cfg.data_root, ["train"])[0]
    return vocab


@register_method("unicl", data="custom", backbones=None, requires=("curated",),
                 inputs=("image", "input_ids", "attention_mask", "label"), defaults={
    "curated": "data/curated",   # the curation stage's output (curation.out)
    "label_key": "concepts",     # concepts | labels | pair (CLIP)
    "embed_dim": 128,
    "text_width": 128, "text_depth": 3, "text_heads": 4, "text_max_len": 64, "text_pool": "mean",
    "vocab_size": 1024, "min_frequency": 2,
    "temperature_init": 0.07,    # logit scale init 1/0.07, capped at 100
    "crop_scale": [0.8, 1.0],
    # CPU default (at 64 px: --set model.pretrain_img_size=64): 1596 curated pairs / 32 = 49
    # steps per epoch x 15 = 735 steps; measured 297 s (79 img/s, pretrain.threads=1 on a shared
    # 2-core box). Batch 64 / lr 1e-3 for 360 steps: zero-shot held-out 56.8% instead of 63.5%.
    "epochs": 15, "lr": 5.0e-4, "batch_size": 32, "weight_decay": 0.1, "warmup_epochs": 1.0,
}, summary="UniCL (Florence): image-text-label contrastive, label-aware bidirectional InfoNCE")
def build(cfg: PretrainConfig) -> UniCLPretrainer:
    curated = resolve_path(cfg.opt("curated"))
    pairs = read_pairs(curated, "train")
    if cfg.max_images > 0:
        pairs = pairs[:cfg.max_images]
    manifest = read_manifest(curated)
    images = cfg.data_root / "images"
    paths = [images / p.image for p in pairs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} curated train images do not exist under {images} "
                         f"(first: {missing[0]}); data.out must be the dataset curation read")
    vocabulary = _vocabulary(manifest, cfg)
    concepts = Concepts(vocabulary)
    mode = str(cfg.opt("label_key"))
    ids, _ = label_ids(label_keys(pairs, mode, concepts))
    holdout = [str(h) for h in manifest.get("holdout") or []]
    mentions = 0
    if holdout:
        from components.curation.labels import PhraseMatcher

        matcher = PhraseMatcher(holdout)
        mentions = sum(bool(matcher.find(p.caption)) for p in pairs)
        if mentions:
            print(f"[unicl] warning: {mentions} train captions mention held-out phrases "
                  f"{holdout}: zero-shot on them is not zero-shot", file=sys.stderr)
    max_len = int(cfg.opt("text_max_len"))
    tokenizer = train_tokenizer([p.caption for p in pairs], int(cfg.opt("vocab_size")),
                                int(cfg.opt("min_frequency")), max_len)
    text_cfg = TextConfig(vocab_size=tokenizer.get_vocab_size(), width=int(cfg.opt("text_width")),
                          depth=int(cfg.opt("text_depth")), heads=int(cfg.opt("text_heads")),
                          max_len=max_len, pool=str(cfg.opt("text_pool")))
    image = {"family": cfg.backbone, "size": cfg.size, "img_size": cfg.img_size,
             "patch_size": cfg.patch_size, "arch": dict(cfg.arch)}
    towers = build_towers(image, text_cfg, int(cfg.opt("embed_dim")),
                          1.0 / float(cfg.opt("temperature_init")), cfg.drop_path)
    record = {"method": "unicl", "seed": cfg.seed, "image": image, "label_key": mode, "vocabulary": vocabulary,
              "colours": concepts.colours, "holdout": holdout, "holdout_mentions": mentions,
              "curated": project_relative(curated)}
    return UniCLPretrainer(towers, tokenizer, pairs, ids, paths, img_size=cfg.img_size,
                           crop_scale=cfg.opt("crop_scale"), record=record)
