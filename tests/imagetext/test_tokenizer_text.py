"""The caption tokenizer (trains, round-trips, deterministic) and the text tower (shapes, mask)."""
from __future__ import annotations

import pytest
import torch

from components.imagetext.text import TextConfig, TextEncoder
from components.imagetext.tokenizer import PAD_ID, encode, load_tokenizer, train_tokenizer

CAPTIONS = [
    "A picture of two red squares and a small blue star.",
    "There is one shape: a green circle.",
    "Three circles on a plain background. A large red circle is to the left of a small circle.",
    "An image showing a yellow triangle and two stars.",
] * 3


def test_tokenizer_trains_round_trips_and_is_deterministic(tmp_path):
    tok = train_tokenizer(CAPTIONS, vocab_size=400)
    again = train_tokenizer(CAPTIONS, vocab_size=400)
    assert tok.to_str() == again.to_str()
    for text in CAPTIONS[:4] + ["A photo of an orange star."]:  # unseen words: byte pieces
        enc = tok.encode(text)
        assert enc.tokens[0] == "[BOS]" and enc.tokens[-1] == "[EOS]"
        assert tok.decode(enc.ids, skip_special_tokens=True) == text.lower()
    assert "[UNK]" not in tok.encode("a photo of a zebra!").tokens
    # frequent caption words are single tokens (with their leading space)
    assert len(tok.encode(" red").ids) == 3
    tok.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert loaded.encode(CAPTIONS[2]).ids == tok.encode(CAPTIONS[2]).ids


def test_encode_pads_and_truncates_keeping_eos():
    tok = train_tokenizer(CAPTIONS, vocab_size=400, max_len=48)
    ids, mask = encode(tok, [CAPTIONS[1], CAPTIONS[2]], max_len=8)
    assert ids.shape == mask.shape == (2, 8) and ids.dtype == torch.long
    eos = tok.token_to_id("[EOS]")
    short = len(tok.encode(CAPTIONS[1]).ids)
    assert mask[0].sum() == min(short, 8) and (ids[0][~mask[0]] == PAD_ID).all()
    assert mask[1].all() and ids[1, -1] == eos  # truncated, still ends with [EOS]


def _batch(cfg: TextConfig, lengths: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, cfg.vocab_size, (len(lengths), length), generator=g)
    mask = torch.arange(length)[None] < torch.tensor(lengths)[:, None]
    return ids.masked_fill(~mask, PAD_ID), mask


@pytest.mark.parametrize("pool", ["mean", "eos"])
def test_text_encoder_shapes_and_padding_invariance(pool):
    cfg = TextConfig(vocab_size=60, width=32, depth=2, heads=4, max_len=20, pool=pool)
    enc = TextEncoder(cfg).eval()
    ids, mask = _batch(cfg, [3, 7, 10], 20)
    with torch.no_grad():
        full = enc(ids, mask)
        short = enc(ids[:, :10], mask[:, :10])          # less padding
        noisy = enc(ids.masked_fill(~mask, 17), mask)   # other ids under the padding
        alone = enc(ids[:1, :3], mask[:1, :3])          # no padding, other rows absent
    assert full.shape == (3, 32)
    assert torch.allclose(full, short, atol=1e-5)
    assert torch.allclose(full, noisy, atol=1e-5)
    assert torch.allclose(full[:1], alone, atol=1e-5)


def test_text_config_checks():
    with pytest.raises(ValueError, match="multiple of heads"):
        TextConfig(vocab_size=10, width=30, heads=4)
    with pytest.raises(ValueError, match="pool"):
        TextConfig(vocab_size=10, pool="cls")
