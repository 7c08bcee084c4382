"""BEiT's visual tokenizer, trained by our own stage: a small VQ-VAE on the pretraining images.

BEiT (Bao et al., 2021, arXiv 2106.08254) predicts, for each masked patch, the id of a
*visual token* from a discrete tokenizer. The paper uses DALL-E's dVAE (8192 codes, trained on
250M images, Gumbel-softmax relaxation, 8x downsampling of a 112 px second view). We download
nothing, so this stage trains a VQ-VAE (van den Oord et al., 2017) on the same images instead.
Departures from DALL-E's tokenizer, and why:

* vector quantisation with a straight-through estimator, not a Gumbel-softmax dVAE: simpler,
  deterministic codes, no temperature schedule;
* codebook of ``codebook_size`` (512 on CPU; 8192 as DALL-E) ``code_dim``-d vectors compared by
  cosine similarity (L2-normalised codes, as ViT-VQGAN / BEiT v2), updated by an exponential
  moving average of their assigned encoder outputs with dead-code restarts (unused codes jump to
  random encoder outputs): these keep a small codebook trained on ~300 images in use;
* the encoder downsamples by the ViT patch size (16) on the training image itself, so there is
  exactly one token per ViT patch and no second, smaller view.

Shapes: ``imgs (B, 3, S, S)`` -> ``z (B, D, S/16, S/16)`` -> ``codes (B, N)`` with
``N = (S/16)^2`` -> reconstruction ``(B, 3, S, S)``. Loss: MSE(recon, image) +
``beta`` * MSE(z, sg(code)) (commitment).

The weights are saved as ``tokenizer.safetensors`` whose metadata holds the architecture
(``config`` JSON), so :func:`load_tokenizer` rebuilds it from the file alone. Model code is torch
only; :func:`train_tokenizer` and the CLI (``__main__``) import the training/tracking helpers
lazily.

CLI: ``python -m components.pretrain.tokenizer --params params.yaml [--set k=v]``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VQTokenizer", "TOKENIZER_DEFAULTS", "save_tokenizer", "load_tokenizer",
           "train_tokenizer"]

TOKENIZER_DEFAULTS: dict[str, Any] = {
    "codebook_size": 512,
    "code_dim": 32,
    "hidden": 64,
    "beta": 0.25,            # commitment weight
    "ema_decay": 0.95,       # codebook EMA (fast: few steps on CPU)
    "dead_code_threshold": 0.5,  # restart codes whose EMA usage count falls below this
    "crop_scale": [0.5, 1.0],
    "epochs": 10,
    "lr": 2.0e-3,
    "weight_decay": 0.0,
    "betas": [0.9, 0.99],
    "warmup_epochs": 0.5,
}


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class VQTokenizer(nn.Module):
    """Convolutional VQ-VAE with a cosine-similarity, EMA-updated codebook.

    Args:
        codebook_size: number of visual tokens K.
        code_dim: code vector width D.
        hidden: channels of the first conv stage (doubled once, from the 3rd stage on).
        downsample: total stride; must be a power of two (= the ViT patch size).
        beta: commitment loss weight.
        ema_decay: codebook EMA decay; ``dead_code_threshold``: restart limit (EMA count).
    """

    def __init__(self, codebook_size: int = 512, code_dim: int = 32, hidden: int = 64,
                 downsample: int = 16, beta: float = 0.25, ema_decay: float = 0.95,
                 dead_code_threshold: float = 0.5) -> None:
        super().__init__()
        stages = int(math.log2(downsample))
        if 2 ** stages != downsample or stages < 1:
            raise ValueError(f"tokenizer downsample must be a power of two, got {downsample}")
        self.config = dict(codebook_size=codebook_size, code_dim=code_dim, hidden=hidden,
                           downsample=downsample, beta=beta, ema_decay=ema_decay,
                           dead_code_threshold=dead_code_threshold)
        self.beta, self.decay, self.dead = beta, ema_decay, dead_code_threshold
        chans = [hidden if i < 2 else 2 * hidden for i in range(stages)]
        enc: list[nn.Module] = []
        c_in = 3
        for c in chans:
            enc += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.ReLU()]
            c_in = c
        enc += [_ResBlock(c_in), _ResBlock(c_in), nn.ReLU(), nn.Conv2d(c_in, code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(code_dim, c_in, 3, padding=1), _ResBlock(c_in),
                                _ResBlock(c_in)]
        for c in reversed([3] + chans[:-1]):
            dec += [nn.ReLU(), nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1)]
            c_in = c
        self.decoder = nn.Sequential(*dec)
        codebook = F.normalize(torch.randn(codebook_size, code_dim), dim=1)
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_count", torch.ones(codebook_size))
        self.register_buffer("ema_sum", codebook.clone())

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[0]

    def _encode(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> L2-normalised ``(B, h, w, D)``."""
        return F.normalize(self.encoder(imgs).permute(0, 2, 3, 1).float(), dim=-1)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., D)`` unit vectors -> (codes ``(...)`` long, code vectors ``(..., D)``)."""
        codes = (z @ self.codebook.t()).argmax(dim=-1)
        return codes, self.codebook[codes]

    @torch.no_grad()
    def encode(self, imgs: torch.Tensor) -> torch.Tensor:
        """Visual tokens: ``(B, 3, S, S)`` -> ``(B, N)`` long, row-major over the patch grid."""
        codes, _ = self.quantize(self._encode(imgs))
        return codes.flatten(1)

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(B, N)`` codes -> reconstructed ``(B, 3, S, S)`` images (normalised pixel space)."""
        q = self.codebook[codes].reshape(codes.shape[0], *grid, -1).permute(0, 3, 1, 2)
        return self.decoder(q)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        flat, idx = z.reshape(-1, z.shape[-1]), codes.reshape(-1)
        onehot = F.one_hot(idx, self.codebook_size).type_as(flat)  # (M, K)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        self.codebook.copy_(F.normalize(self.ema_sum, dim=1))
        dead = self.ema_count < self.dead
        if dead.any():
            pick = torch.randint(0, flat.shape[0], (int(dead.sum()),), device=flat.device)
            self.codebook[dead] = flat[pick]
            self.ema_sum[dead] = flat[pick]
            self.ema_count[dead] = 1.0

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        imgs = batch["image"]
        z = self._encode(imgs)
        codes, q = self.quantize(z)
        if self.training:
            self._ema_update(z, codes)
        commit = F.mse_loss(z, q.detach())
        q_st = z + (q - z).detach()  # straight-through: decoder grads flow into the encoder
        recon = self.decoder(q_st.permute(0, 3, 1, 2).to(imgs.dtype))
        rec = F.mse_loss(recon.float(), imgs.float())
        usage = torch.bincount(codes.flatten(), minlength=self.codebook_size).float()
        p = usage / usage.sum()
        perplexity = torch.exp(-(p * (p + 1e-10).log()).sum())
        return {"loss": rec + self.beta * commit, "recon": rec.detach(),
                "commit": commit.detach(), "perplexity": perplexity}


def save_tokenizer(model: VQTokenizer, path: str | Path) -> Path:
    """``.safetensors`` with the architecture in the metadata (atomic: temp file + rename)."""
    import os
    import tempfile

    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt", "kind": "vq-tokenizer",
                                          "config": json.dumps(model.config, sort_keys=True)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_tokenizer(path: str | Path) -> VQTokenizer:
    """Rebuild a :class:`VQTokenizer` from its safetensors file (frozen, eval mode)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"BEiT tokenizer not found: {path}; run the tokenizer stage first "
            "(python -m components.pretrain.tokenizer --params params.yaml) or set "
            "pretrain.beit.tokenizer in params.yaml")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("kind") != "vq-tokenizer" or "config" not in meta:
        raise ValueError(f"{path} is not a tokenizer written by components.pretrain.tokenizer "
                         "(no 'config' metadata)")
    model = VQTokenizer(**json.loads(meta["config"]))
    model.load_state_dict(load_file(str(path), device="cpu"))
    model.requires_grad_(False)
    return model.eval()


# --------------------------------------------------------------------------- stage
def train_tokenizer(cfg, *, progress: bool = True, on_log=None) -> dict[str, Any]:
    """Train on ``images/unlabeled`` and write ``<out>/tokenizer/`` (see :mod:`.stage`)."""
    from components.pretrain.stage import train_and_write

    model = VQTokenizer(cfg.opt("codebook_size"), cfg.opt("code_dim"), cfg.opt("hidden"),
                        cfg.patch_size, cfg.opt("beta"), cfg.opt("ema_decay"),
                        cfg.opt("dead_code_threshold"))

    def transform():
        from components.pretrain.data import basic_transform

        return basic_transform(cfg.img_size, tuple(cfg.opt("crop_scale")))

    model.make_transform = transform  # type: ignore[attr-defined]

    def extra(model: VQTokenizer, paths: Sequence[Path]) -> dict[str, Any]:
        return {"codebook_size": model.codebook_size,
                "codes_used": _codes_used(model, paths, cfg.img_size)}

    return train_and_write(cfg, model, data="unlabeled",
                           save=lambda m, d: save_tokenizer(m, d / "tokenizer.safetensors"),
                           extra=extra, progress=progress, on_log=on_log)


@torch.no_grad()
def _codes_used(model: VQTokenizer, paths: Sequence[Path], img_size: int) -> int:
    """Distinct codes over (up to 64 of) the training images, centre-resized."""
    from PIL import Image

    from components.pretrain.data import normalize

    model = model.eval().cpu()
    norm = normalize()
    seen: set[int] = set()
    for p in list(paths)[:64]:
        with Image.open(p) as im:
            x = norm(im.convert("RGB").resize((img_size, img_size), Image.BICUBIC))
        seen.update(model.encode(x[None]).flatten().tolist())
    return len(seen)
