"""The caption tokenizer: byte-level BPE trained on the curated train captions (no downloaded
vocabulary), saved as ``tokenizer.json`` beside the towers.

Why byte-level BPE (``tokenizers``): every string encodes (no ``[UNK]``: a prompt word that
never occurs in training, e.g. "photo", still becomes byte pieces) and decoding is exact, so a
caption round-trips to its lower-cased self. The synthetic captions use ~100 distinct words, so
a 1k vocabulary holds each of them (with its leading space) as one token. Training is
deterministic: the same captions in the same order give the same ``tokenizer.json``.

Encoding: ``[BOS] tokens [EOS]``, truncated to ``max_len`` (special tokens included), then
right-padded with ``[PAD]`` (id 0) to exactly ``max_len``; the attention mask is True on real
tokens. Shapes: ``texts (B,) -> ids (B, L) int64, mask (B, L) bool``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import torch

__all__ = ["SPECIAL_TOKENS", "PAD_ID", "train_tokenizer", "load_tokenizer", "encode"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
PAD_ID = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2,
                    max_len: int = 48):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts`` (lower-cased, NFKC)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=int(vocab_size), min_frequency=int(min_frequency),
                         special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos, eos = tok.token_to_id("[BOS]"), tok.token_to_id("[EOS]")
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", bos), ("[EOS]", eos)])
    tok.enable_truncation(int(max_len))
    if tok.token_to_id("[PAD]") != PAD_ID:  # pragma: no cover - special tokens come first
        raise RuntimeError("tokenizer: [PAD] must have id 0")
    return tok


def load_tokenizer(path: str | Path):
    """A tokenizer saved by ``tok.save(path)`` (``tokenizer.json``)."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer not found: {path} (run the pretrain_unicl stage)")
    return Tokenizer.from_file(str(path))


def encode(tok, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``texts`` -> ``(ids (B, max_len) int64, mask (B, max_len) bool)`` (see module docstring).

    Truncation keeps ``[EOS]`` as the last real token whatever the tokenizer's own setting.
    """
    eos = tok.token_to_id("[EOS]")
    ids = torch.full((len(texts), max_len), PAD_ID, dtype=torch.long)
    for row, enc in enumerate(tok.encode_batch(list(texts))):
        seq = enc.ids
        if len(seq) > max_len:
            seq = seq[:max_len - 1] + [eos]
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids, ids != PAD_ID
