"""``python -m components.evaluate --params params.yaml [--set evaluate.split=val ...]``"""
from __future__ import annotations

import sys

from components.common.env import apply_defaults
from components.common.params import stage_parser


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    parser = stage_parser(
        "python -m components.evaluate",
        description="Evaluate <finetune.work_dir>/final/ on evaluate.split: COCO bbox + segm AP "
                    "(AP, AP50, AP75, APs, APm, APl) -> <evaluate.out>/metrics.json and "
                    "<evaluate.out>/plots/ (PNG + CSV for `dvc plots`); logged to MLflow.",
        example="evaluate.split=val")
    parser.add_argument("--work-dir", default=None,
                        help="fine-tuning folder holding final/ (default: finetune.work_dir)")
    parser.add_argument("--out", default=None, help="output folder (default: evaluate.out)")
    parser.add_argument("--backend", choices=("faster", "pycocotools"), default="faster",
                        help="COCO evaluation backend (default: %(default)s; same numbers)")
    parser.add_argument("--compare-backends", action="store_true",
                        help="also score with both backends, write backend_comparison.json "
                             "(timings and largest difference)")
    args = parser.parse_args(argv)

    from components.common.params import load_params_or_exit

    params = load_params_or_exit(args.params, args.overrides)
    from components.evaluate.stage import evaluate

    try:
        evaluate(params, work_dir=args.work_dir, out=args.out, backend=args.backend,
                 compare=args.compare_backends)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
