"""``python -m components.validation --params params.yaml [--dataset DIR] [--out DIR]``.

Exit 0 and ``<out>/validated.json`` when the dataset passes; exit 1 with the first failures
on stderr (``<file>:<record>: <rule>``) and no marker when it does not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.common.env import apply_defaults
from components.common.params import add_params_arguments

DEFAULT_OUT = "results/validation"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m components.validation",
        description="Validate a dataset folder (COCO / OpenImages / captions + image files) with "
                    "Great Expectations. Writes report.html, report.md and summary.json to --out "
                    "and, only if everything passes, validated.json (deleted first on every run).")
    add_params_arguments(p, example="validation.decode_images=false",
                         params_help="params file (sections data, validation; default: %(default)s)")
    p.add_argument("--dataset", help="dataset folder (default: params data.out)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default: {DEFAULT_OUT})")
    p.add_argument("--suite", action="append", dest="suites", metavar="NAME",
                   help="run only this registered suite (repeatable; default: all that apply)")
    p.add_argument("--gx-data-docs", action="store_true",
                   help="also build GX Data Docs in <out>/gx-data-docs (needs CDN assets to "
                        "render styled; report.html is self-contained)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    args = parse_args(argv)
    from components.common.params import load_params_or_exit
    from components.validation.gate import validate_dataset
    from components.validation.report import console_lines
    from components.validation.suites import REGISTRY

    unknown = [name for name in args.suites or [] if name not in REGISTRY]
    if unknown:
        print("; ".join(REGISTRY.unknown(name) for name in unknown), file=sys.stderr)
        return 2
    params = load_params_or_exit(args.params, args.overrides)
    dataset = Path(args.dataset or params.get("data", {}).get("out", "data/dataset"))
    out = Path(args.out)
    from components.tracking.runs import stage_run

    with stage_run("validate", params) as run:
        result = validate_dataset(dataset, params.get("validation", {}), out,
                                  progress=not args.no_progress, suites=args.suites,
                                  data_docs=args.gx_data_docs)
        _log_to_mlflow(run, result, out)
        if result.success:
            print(f"validation passed: {dataset} ({', '.join(result.summary['suites'])}); "
                  f"marker {out / 'validated.json'}")
            if result.warnings:
                print(f"{len(result.warnings)} warning(s), accepted (see {out / 'report.md'}):")
                for line in console_lines(result.warnings, limit=5):
                    print(f"  {line}")
            return 0
        print(f"validation FAILED for {dataset}: {len(result.failures)} problem(s)", file=sys.stderr)
        for line in console_lines(result.failures):
            print(line, file=sys.stderr)
        print(f"full report: {out / 'report.html'}; fix the data (or the importer) and rerun",
              file=sys.stderr)
        raise SystemExit(1)  # inside stage_run: the MLflow stage run is marked FAILED


def _log_to_mlflow(run, result, out: Path) -> None:
    """The report and the pass/fail counts, so the MLflow UI shows why a pipeline stopped."""
    import mlflow

    mlflow.log_metrics({"validation.success": float(result.success),
                        "validation.failures": float(len(result.failures)),
                        "validation.warnings": float(len(result.warnings))})
    for name in ("report.html", "report.md", "summary.json"):
        if (out / name).exists():
            mlflow.log_artifact(str(out / name), artifact_path="validation")
