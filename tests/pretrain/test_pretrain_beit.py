"""BEiT + its tokenizer: code shapes, save/load, blockwise masks, loss on masked positions only."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from pretrain_helpers import IMG, TINY_ARCH

from components.pretrain.beit import BEiTPretrainer, beit_loss, block_mask
from components.pretrain.common import build_backbone
from components.pretrain.tokenizer import VQTokenizer, load_tokenizer, save_tokenizer


def test_tokenizer_codes_one_token_per_patch(tokenizer_file: Path) -> None:
    tok = load_tokenizer(tokenizer_file)
    assert tok.codebook_size == 16 and not tok.training
    assert not any(p.requires_grad for p in tok.parameters())
    imgs = torch.randn(3, 3, IMG, IMG)
    codes = tok.encode(imgs)
    assert codes.shape == (3, (IMG // 16) ** 2) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 16
    assert tok.decode_codes(codes, (IMG // 16, IMG // 16)).shape == imgs.shape


def test_tokenizer_roundtrip_and_training_step(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tok = VQTokenizer(codebook_size=8, code_dim=4, hidden=4, downsample=16)
    imgs = torch.randn(2, 3, 32, 32)
    out = tok({"image": imgs})  # training mode: EMA codebook update
    assert set(out) >= {"loss", "recon", "commit", "perplexity"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert tok.encoder[0].weight.grad is not None  # straight-through reaches the encoder
    torch.testing.assert_close(tok.codebook.norm(dim=1), torch.ones(8))
    path = save_tokenizer(tok, tmp_path / "tok.safetensors")
    again = load_tokenizer(path)
    assert again.config == tok.config
    assert torch.equal(again.encode(imgs), tok.eval().encode(imgs))
    with pytest.raises(ValueError, match="power of two"):
        VQTokenizer(downsample=12)


@pytest.mark.parametrize("grid, n_mask", [((8, 8), 26), ((14, 14), 78), ((4, 4), 6)])
def test_block_mask_has_the_exact_count_and_blocks(grid: tuple[int, int], n_mask: int) -> None:
    rng = random.Random(0)
    masks = [block_mask(grid, n_mask, max(2, round(16 * grid[0] * grid[1] / 196)), rng)
             for _ in range(20)]
    assert all(m.shape == grid and int(m.sum()) == n_mask for m in masks)
    assert len({tuple(m.flatten().tolist()) for m in masks}) > 1
    if grid == (14, 14):  # blockwise: masked patches have masked neighbours far above chance
        m = masks[0].float()
        neighbours = (m[1:, :] * m[:-1, :]).sum() + (m[:, 1:] * m[:, :-1]).sum()
        pairs = (m[1:, :] + m[:-1, :]).clamp(max=1).sum() + (m[:, 1:] + m[:, :-1]).clamp(max=1).sum()
        assert neighbours / pairs > 0.4  # random 40% masking gives ~0.25


def test_beit_loss_ignores_unmasked_positions() -> None:
    torch.manual_seed(0)
    codes = torch.randint(0, 10, (2, 6))
    mask = torch.tensor([[1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]], dtype=torch.bool)
    perfect = torch.nn.functional.one_hot(codes, 10).float() * 50.0
    logits = torch.where(mask.unsqueeze(-1), perfect, torch.randn(2, 6, 10) * 50.0)
    logits.requires_grad_(True)
    loss = beit_loss(logits, codes, mask)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss_wrong = beit_loss(logits.detach().roll(1, dims=-1), codes, mask)
    assert loss_wrong.item() > 10
    logits2 = torch.randn(2, 6, 10, requires_grad=True)
    beit_loss(logits2, codes, mask).backward()
    assert torch.count_nonzero(logits2.grad[~mask]) == 0
    assert torch.count_nonzero(logits2.grad[mask]) > 0


def test_beit_masks_forty_percent_and_replaces_them_by_the_mask_token(tokenizer_file: Path) -> None:
    torch.manual_seed(0)
    model = BEiTPretrainer(build_backbone("tiny", IMG, arch=TINY_ARCH), load_tokenizer(tokenizer_file),
                           mask_ratio=0.4)
    assert model.num_masked == round(0.4 * 16)
    masks = model.sample_masks(5)
    assert masks.shape == (5, 16) and (masks.sum(1) == model.num_masked).all()
    # A masked patch's content cannot reach the output: changing its pixels changes nothing.
    imgs = torch.randn(1, 3, IMG, IMG)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, 0] = True
    edited = imgs.clone()
    edited[..., :16, :16] = 0.0  # patch 0
    model.eval()
    torch.testing.assert_close(model.forward_logits(imgs, mask), model.forward_logits(edited, mask))
    model.train()
    assert not model.tokenizer.training  # frozen tokenizer stays in eval mode
    out = model({"image": torch.randn(4, 3, IMG, IMG)})
    out["loss"].backward()
    assert model.mask_token.grad is not None
    assert all(p.grad is None for p in model.tokenizer.parameters())
