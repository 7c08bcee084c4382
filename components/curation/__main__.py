"""CLI: ``python -m components.curation --params params.yaml [--set k=v] [--no-tracking]``.

Curates the dataset's caption pairs (:func:`components.curation.stage.run`) inside an MLflow
stage run ``curate`` nested under the pipeline's parent run: the counts as metrics
(``curation.<split>.in|kept|removed.<reason>``), report.md, counts.json and manifest.json as
artifacts. The curated files themselves are versioned by DVC, not MLflow.
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


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m components.curation",
        description="Curate the dataset's image-caption pairs (duplicates, near-duplicates, "
                    "caption length/charset/language, image size, held-out classes) into "
                    "curation.out (<split>.jsonl + manifest.json) with a report in "
                    "curation.report. Defaults: components/curation/config.py.")
    add_params_arguments(ap, example="curation.phash_max_distance=6 or "
                                     "'curation.holdout=[red star]'")
    ap.add_argument("--dataset", help="dataset folder (default: params data.out)")
    ap.add_argument("--no-tracking", action="store_true",
                    help="do not log to MLflow (e.g. on a machine without mlflow)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def _metrics(counts: dict[str, Any]) -> dict[str, float]:
    out = {}
    for split, c in {**counts["splits"], "total": counts["total"]}.items():
        out[f"curation.{split}.in"] = float(c["in"])
        out[f"curation.{split}.kept"] = float(c["kept"])
        for reason, n in c["removed"].items():
            out[f"curation.{split}.removed.{reason}"] = float(n)
    return out


def _log(mlflow, result: dict[str, Any]) -> None:
    mlflow.log_metrics(_metrics(result["counts"]))
    mlflow.log_metric("curation.wall_s", result["wall_s"])
    report = Path(result["params"]["report"])
    for path in (report / "report.md", report / "counts.json",
                 Path(result["params"]["out"]) / "manifest.json"):
        if path.is_file():
            mlflow.log_artifact(str(path), artifact_path="curation")


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    ap = _parser()
    args = ap.parse_args(argv)
    from components.curation.config import CurationConfig, with_defaults
    from components.curation.stage import CurationError, run

    params = params_from_args(ap, args, with_defaults)
    try:
        CurationConfig.from_params(params)
    except (KeyError, ValueError) as exc:
        ap.error(str(exc.args[0] if exc.args else exc))

    def work() -> dict[str, Any]:
        return run(params, dataset=args.dataset, progress=not args.quiet)

    try:
        result = work() if args.no_tracking else tracked("curate", params, work, _log)
    except CurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = result["counts"]["total"]
    removed = sum(total["removed"].values())
    print(f"[curate] wrote {result['params']['out']} ({total['kept']} of {total['in']} pairs "
          f"kept, {removed} removed; splits "
          + ", ".join(f"{s} {c['kept']}/{c['in']}" for s, c in result["counts"]["splits"].items())
          + f") and {result['params']['report']}/report.md in {result['wall_s']:.1f} s")
    empty = [s for s, c in result["counts"]["splits"].items() if c["kept"] == 0]
    if empty:
        print(f"warning: no pairs kept in {empty}; see the report and loosen curation.*",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
