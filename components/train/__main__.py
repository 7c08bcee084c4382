"""``python -m components.train --params params.yaml [--set finetune.epochs=2 ...]``"""
from __future__ import annotations

import sys

from components.common.env import apply_defaults
from components.common.params import stage_parser


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    parser = stage_parser(
        "python -m components.train",
        description="Fine-tune Mask R-CNN with the model.backbone family (mmengine Runner) on "
                    "the validated dataset (data.out) and write <work_dir>/final/{model.safetensors,config.py,"
                    "meta.json,train_log.jsonl}. Resumes an interrupted run with the same "
                    "config automatically.")
    parser.add_argument("--work-dir", default=None,
                        help="output folder (default: finetune.work_dir from params)")
    parser.add_argument("--validated", default=None, metavar="PATH",
                        help="validation marker to check (default: results/validation/validated.json)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved mmengine config and exit (no training)")
    args = parser.parse_args(argv)

    from components.common.params import load_params_or_exit

    params = load_params_or_exit(args.params, args.overrides)
    if args.print_config:
        from components.train.config import build_config

        print(build_config(params, work_dir=args.work_dir).pretty_text)
        return 0

    from components.train.finetune import DatasetNotValidated, finetune
    from components.train.hooks import NonFiniteLossError

    try:
        finetune(params, work_dir=args.work_dir, validation_marker=args.validated)
    except (DatasetNotValidated, NonFiniteLossError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
