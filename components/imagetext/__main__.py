"""CLI: ``python -m components.imagetext evaluate --params params.yaml [--set k=v] [--no-tracking]
[--checkpoint-dir pretrained/unicl]``.

Runs the transfer evaluation (:func:`components.imagetext.evaluate.evaluate`) inside an MLflow
stage run ``imagetext-evaluate`` nested under the pipeline's parent run (``<tower>.<protocol>``
accuracies and ``chance.<protocol>`` as metrics; report.md, results.json and the plot as
artifacts), then writes ``imagetext.out`` atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from components.common.env import apply_defaults
from components.common.tracked import tracked
from components.common.params import add_params_arguments, params_from_args

__all__ = ["main"]

STAGE = "imagetext-evaluate"
_ARTIFACTS = ("report.md", "results.json", "metrics.json", "accuracy.png")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m components.imagetext",
        description="Image-text (UniCL) transfer: zero-shot on held-out classes, linear probe "
                    "and few-shot on the frozen image tower, against chance and random-init "
                    "towers. Defaults: components/imagetext/evaluate.py IMAGETEXT_DEFAULTS.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ev = sub.add_parser("evaluate", help="evaluate a pretrain_unicl output folder",
                        description="Write imagetext.out/{report.md,results.json,metrics.json,"
                                    "accuracy.png} for the towers in --checkpoint-dir.")
    add_params_arguments(ev, example="imagetext.shots=[1,5] or imagetext.baseline=false")
    ev.add_argument("--checkpoint-dir", default=None,
                    help="pretrain_unicl output folder (default: params imagetext.checkpoint_dir)")
    ev.add_argument("--no-tracking", action="store_true",
                    help="do not log to MLflow (e.g. on a machine without mlflow)")
    ev.add_argument("--quiet", action="store_true", help="no progress lines")
    return ap


def _log(mlflow, result: tuple[dict[str, Any], Path]) -> None:
    from components.imagetext.evaluate import flat_metrics

    results, out = result
    mlflow.log_metrics(flat_metrics(results))
    mlflow.log_metric("imagetext.wall_s", float(results["wall_s"]))
    for name in _ARTIFACTS:
        if (out / name).is_file():
            mlflow.log_artifact(str(out / name), artifact_path=STAGE)


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    ap = _parser()
    args = ap.parse_args(argv)
    from components.imagetext.evaluate import evaluate, with_defaults, write_outputs

    params = params_from_args(ap, args, with_defaults)

    def work() -> tuple[dict[str, Any], Path]:
        results = evaluate(params, args.checkpoint_dir, progress=not args.quiet)
        return results, write_outputs(results, params["imagetext"]["out"])

    try:
        results, out = work() if args.no_tracking else tracked(STAGE, params, work, _log)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    unicl = results["towers"].get("unicl", {})
    shown = ", ".join(f"{k} {100 * v['accuracy']:.1f}% (chance {100 * results['sets'][k]['chance']:.1f}%)"
                      for k, v in unicl.items() if isinstance(v, dict) and k in results["sets"])
    print(f"[imagetext] wrote {out}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
