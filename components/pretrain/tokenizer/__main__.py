"""CLI: ``python -m components.pretrain.tokenizer --params params.yaml [--set k=v ...]``.

Trains BEiT's VQ-VAE tokenizer (``pretrain.tokenizer.*``) on ``images/unlabeled`` and writes
``pretrained/tokenizer/`` (``tokenizer.safetensors``, ``meta.json``, ``loss.csv``,
``loss_curve.png``) inside an MLflow stage run ``pretrain-tokenizer``.
"""
from __future__ import annotations

import sys

from components.pretrain.__main__ import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("tokenizer", argv, prog="python -m components.pretrain.tokenizer",
                     description="Train BEiT's visual tokenizer (VQ-VAE) on images/unlabeled "
                                 "and write pretrained/tokenizer/tokenizer.safetensors.")


if __name__ == "__main__":
    sys.exit(main())
