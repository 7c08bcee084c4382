"""The validation gate: run every applicable suite on a dataset folder, write the reports, and
write ``validated.json`` (the marker downstream stages depend on) only if everything passed.

The marker is deleted FIRST on every run, so a failed or interrupted run never leaves a stale
"validated" behind for a dataset that has since changed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from components.common.atomic import write_json_atomic
from components.data import layout
from components.validation import report
from components.validation.images import ImageChecker
from components.validation.result import Failure, SuiteReport, ValidationResult
from components.validation.runner import gx_datasource, table_rows, table_warnings, validate_table
from components.validation.suites import REGISTRY, Config

MARKER = "validated.json"


def validate_dataset(root: Path, cfg: dict, out: Path, progress: bool = True,
                     suites: list[str] | None = None,
                     workers: int | None = None, data_docs: bool = False) -> ValidationResult:
    """Validate the dataset folder ``root`` (see ``components/data/layout.py``).

    Args:
        root: dataset folder.
        cfg: the ``validation`` section of params.yaml (the whole params dict also works).
        out: report folder; gets ``report.html``, ``report.md``, ``summary.json`` and, only on
            success, ``validated.json``.
        progress: show tqdm bars for the image checks.
        suites: restrict to these registered suite names (default: every suite whose files
            are present).
        workers: threads for the image decode pass (default: min(4, CPU count)).
        data_docs: also build GX's own Data Docs under ``<out>/gx-data-docs`` (they load
            CSS/JS from CDNs, so they render unstyled offline; ``report.html`` does not).
    Returns:
        :class:`ValidationResult` with ``success``, ``failures`` (file, record, rule) and
        ``summary`` (what ``summary.json`` holds).
    """
    t_start = time.perf_counter()
    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    config = Config.from_params(cfg or {})
    checker = ImageChecker(layout.images_dir(root), config.max_pixels, config.decode_images,
                           workers=workers, progress=progress)
    reports: list[SuiteReport] = []
    failures: list[Failure] = []
    timings = {"tables": 0.0, "gx": 0.0}

    if not root.is_dir():
        failures.append(Failure(str(root), "-", "dataset folder not found (run the data stage "
                                                "first or pass --dataset DIR)"))
    else:
        t0 = time.perf_counter()
        gx_datasource()                    # import GX (~4 s) outside the per-phase timings
        timings["gx_import"] = time.perf_counter() - t0
        for name, suite in REGISTRY.items():
            if suites is not None and name not in suites:
                continue
            files = suite.discover(root)
            if not files:
                continue
            rep = _run_suite(name, suite, root, files, config, checker, timings,
                             out / "gx-data-docs" if data_docs else None)
            reports.append(rep)
            failures.extend(rep.failures)
        if not reports:
            failures.append(Failure(str(root), "-", "nothing to validate: no annotations/"
                                    "instances_*.json, openimages/*.csv or captions/*.jsonl"))

    success = not failures and all(r.success for r in reports)
    timings["image_header"] = checker.seconds["header"]
    timings["image_decode"] = checker.seconds["decode"]
    # "tables" ran the image checks inside it: what remains is JSON/CSV parsing + flattening
    timings["flatten"] = max(0.0, timings.pop("tables") - timings["image_header"]
                             - timings["image_decode"])
    timings["total"] = time.perf_counter() - t_start
    summary = {
        "dataset": str(root),
        "success": success,
        "failures": len(failures),
        "warnings": sum(len(r.warnings) for r in reports),
        "config": {"max_pixels": config.max_pixels, "caption_length": list(config.caption_length),
                   "decode_images": config.decode_images,
                   "bbox_tolerance_px": config.bbox_tolerance_px},
        "images_checked": len(checker.cache),
        "suites": {r.name: r.summary() for r in reports},
        "seconds": {k: round(v, 4) for k, v in timings.items()},
    }
    result = ValidationResult(dataset=str(root), success=success, failures=failures,
                              suites=reports, summary=summary)
    report.write_all(result, out)
    if success:
        # Deterministic on purpose (no timestamp): DVC stages downstream depend on this file, so
        # re-validating unchanged data must not make finetune/pretraining look stale.
        write_json_atomic(out / MARKER, {
            "dataset": str(root),
            "content_hash": _content_hash(root),
            "suites": [r.name for r in reports],
        })
    return result


def _run_suite(name: str, suite, root: Path, files: list[Path], config: Config,
               checker: ImageChecker, timings: dict[str, float],
               data_docs: Path | None) -> SuiteReport:
    t0 = time.perf_counter()
    rep = SuiteReport(name=name, files=[_rel(root, f) for f in files])
    tables, structural = suite.build(root, files, config, checker)
    t1 = time.perf_counter()
    timings["tables"] += t1 - t0
    rep.failures.extend(structural)
    rep.structural_failures = len(structural)
    rep.rows = table_rows(tables)
    for table in tables:
        outcomes, fails, _ = validate_table(table, data_docs)
        rep.expectations.extend(outcomes)
        rep.failures.extend(fails)
        rep.warnings.extend(table_warnings(table))
    timings["gx"] += time.perf_counter() - t1
    rep.evaluated = len(rep.expectations)
    rep.failed = sum(not o.success for o in rep.expectations)
    rep.success = not rep.failures and rep.failed == 0
    rep.seconds = round(time.perf_counter() - t0, 4)
    return rep


def _content_hash(root: Path) -> Any:
    try:
        return json.loads((root / layout.MANIFEST).read_text()).get("content_hash")
    except (OSError, ValueError, AttributeError):
        return None


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
