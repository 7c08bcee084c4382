"""Run an experiment: every job (variant x seed) in its own process, then the report.

One invocation = one MLflow parent run: the runner picks a pipeline id
(``exp-<name>-<UTC timestamp>``) and passes it to every job process as ``$VITDET_PIPELINE_ID``,
so all fine-tune / evaluate stage runs nest under one parent, where the report is logged.

Per job: a pre-flight ``check`` (e.g. the pretrained backbone exists); skip when the previous
``result.json`` is ``ok`` with the same resume key (:mod:`components.experiments.plan`), unless
``force`` (which also removes the job folder: no resume from its checkpoints); otherwise
``python -m components.experiments variant <dir>/request.json`` with output
in ``<dir>/variant.log``. A failed job is recorded (its message in result.json) and the others
go on; the outcome's exit code is 1 when any variant failed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from components.common.atomic import write_json_atomic
from components.common.env import PROJECT_ROOT
from components.experiments.aggregate import VariantSummary
from components.experiments.plan import Job, expected_config_hash, plan, resume_key
from components.experiments.registry import VariantError, get_experiment
from components.experiments.report import collect_results, write_report
from components.experiments.variant import RESULT, failed_result, read_result, write_request

__all__ = ["Outcome", "run_experiment", "spawn_variant", "new_pipeline_id", "should_skip",
           "fmt_duration"]

Launcher = Callable[[Path, Path, dict], int]  # (request.json, log file, env) -> exit status


@dataclass
class Outcome:
    """What one ``run`` invocation did."""

    exit_code: int
    pipeline_id: str
    report: Path | None
    summaries: list[VariantSummary]
    results: dict[tuple[str, int], dict]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def new_pipeline_id(name: str) -> str:
    """``exp-<name>-<UTC timestamp>-<4 hex>`` (the suffix keeps same-second invocations apart)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"exp-{name}-{stamp}-{uuid.uuid4().hex[:4]}"


def fmt_duration(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def spawn_variant(request: Path, log_file: Path, env: dict) -> int:
    """The job in a fresh Python process (clean peak memory, no shared MLflow run state)."""
    with open(log_file, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "components.experiments", "variant", str(request)],
            cwd=PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            return proc.wait()
        except BaseException:
            # interrupted: SIGTERM lets the job's stage_run close its MLflow runs as KILLED
            # (instead of leaving them RUNNING); it gets 30 s before SIGKILL
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def should_skip(job: Job, inference_images: int,
                config_hash: Callable[[Mapping[str, Any], Path], str]) -> tuple[bool, str]:
    """(skip?, why): an ``ok`` result whose resume key matches the job's current one."""
    prev = read_result(job.dir)
    if prev is None or prev.get("status") != "ok":
        return False, "no finished result"
    try:
        key = resume_key(config_hash(job.params, job.dir), job.params, inference_images,
                         job.variant.labels)
    except Exception as exc:  # noqa: BLE001 (cannot tell: run it, the job reports the problem)
        return False, f"could not compute the config hash ({type(exc).__name__}: {exc})"
    if prev.get("resume_key") != key:
        return False, "config changed since the last result"
    return True, "unchanged since the last result"


def _identity(job: Job, pipeline_id: str) -> dict:
    return {"experiment": job.experiment, "variant": job.variant.name, "seed": job.seed,
            "labels": job.variant.labels, "overrides": job.variant.overrides,
            "pipeline_id": pipeline_id}


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _short(result: dict) -> str:
    if result.get("status") != "ok":
        return f"FAILED: {str(result.get('error'))[:300]}"
    s = result.get("summary") or {}
    mask = f", APmask {s['segm_mAP']:.4f}" if "segm_mAP" in s else ""  # SSDLite: boxes only
    return (f"ok, APbox {s.get('bbox_mAP', float('nan')):.4f}{mask}, "
            f"mem {s.get('peak_train_mem_mib', 0):.0f} MiB")


def _preflight(spec, job: Job, pipeline_id: str) -> str | None:
    """The experiment's ``check``; on failure records the failed result, returns the message."""
    if spec.check is None:
        return None
    try:
        spec.check(job.variant, job.params)
    except VariantError as exc:
        write_json_atomic(job.dir / RESULT, failed_result(_identity(job, pipeline_id),
                                                          f"VariantError: {exc}"))
        return str(exc)
    return None


def _launch(job: Job, launch: Launcher, env: dict, request: Path) -> tuple[dict, float]:
    """Run the job's process; a process that left no result is recorded as failed."""
    t0 = time.perf_counter()
    code = launch(request, job.dir / "variant.log", env)
    seconds = time.perf_counter() - t0
    result = read_result(job.dir)
    if result is None:  # killed, out of memory, crashed before writing its result
        result = failed_result(
            _identity(job, env["VITDET_PIPELINE_ID"]),
            f"variant process exited with status {code} without a result; "
            f"last lines of {job.dir / 'variant.log'}:\n{_tail(job.dir / 'variant.log')}",
            wall_s=round(seconds, 3))
        write_json_atomic(job.dir / RESULT, result)
    return result, seconds


def run_experiment(name: str, params: Mapping[str, Any], *, seeds: list[int] | None = None,
                   variants: list[str] | None = None, force: bool = False,
                   validation_marker: str | Path | None = None, inference_images: int = 10,
                   command: str = "", launch: Launcher | None = None,
                   config_hash: Callable[[Mapping[str, Any], Path], str] | None = None,
                   echo: Callable[[str], None] = lambda s: print(s, flush=True)) -> Outcome:
    """Run experiment ``name`` on the base ``params`` (params.yaml + CLI overrides) and write
    its report. ``launch``/``config_hash`` default to a subprocess per job / the fine-tuning
    stage's own hash (tests substitute them to exercise the bookkeeping without training).

    Raises :class:`components.experiments.plan.UsageError` / ``KeyError`` for an unknown
    experiment or variant, before anything runs.
    """
    spec = get_experiment(name)
    jobs = plan(spec, params, seeds=seeds, names=variants)
    launch = launch or spawn_variant
    config_hash = config_hash or expected_config_hash
    pipeline_id = new_pipeline_id(name)
    env = {**os.environ, "VITDET_PIPELINE_ID": pipeline_id}
    out = Outcome(0, pipeline_id, None, [], {})
    start, durations = time.perf_counter(), []

    def eta(left: int) -> str:
        if not left:
            return "done"
        if not durations:
            return "ETA unknown"
        return f"ETA {fmt_duration(sum(durations) / len(durations) * left)} for {left} jobs"

    echo(f"[exp {name}] {len(jobs)} jobs ({len({j.variant.name for j in jobs})} variants x "
         f"{len({j.seed for j in jobs})} seeds), MLflow pipeline {pipeline_id}")
    for i, job in enumerate(jobs, 1):
        tag = f"[exp {name}] {i}/{len(jobs)} {job.key}"
        job.dir.mkdir(parents=True, exist_ok=True)
        if (error := _preflight(spec, job, pipeline_id)) is not None:
            out.failed.append(job.key)
            echo(f"{tag}: FAILED before start: {error}")
            continue
        if not force:
            skip, why = should_skip(job, inference_images, config_hash)
            if skip:
                out.skipped.append(job.key)
                echo(f"{tag}: skipped ({why}; --force reruns)")
                continue
        else:
            shutil.rmtree(job.dir)
            job.dir.mkdir(parents=True)
        (job.dir / RESULT).unlink(missing_ok=True)
        request = write_request(job.dir, experiment=name, variant=job.variant, seed=job.seed,
                                params=job.params, validation_marker=validation_marker,
                                inference_images=inference_images, pipeline_id=pipeline_id)
        echo(f"{tag}: start (elapsed {fmt_duration(time.perf_counter() - start)}, "
             f"{eta(len(jobs) - i + 1)}); log {job.dir / 'variant.log'}")
        result, seconds = _launch(job, launch, env, request)
        durations.append(seconds)
        (out.ran if result.get("status") == "ok" else out.failed).append(job.key)
        echo(f"{tag}: {_short(result)} in {fmt_duration(seconds)} (elapsed "
             f"{fmt_duration(time.perf_counter() - start)}, {eta(len(jobs) - i)})")
        if result.get("status") != "ok":
            echo(_tail(job.dir / "variant.log"))

    variants_run = list({j.variant.name: j.variant for j in jobs}.values())
    seed_list = list(dict.fromkeys(j.seed for j in jobs))
    out.results = collect_results(jobs)
    out.report, out.summaries = write_report(spec, params, variants_run, seed_list, out.results,
                                             command=command, pipeline_id=pipeline_id)
    bad = [s.name for s in out.summaries if s.status != "ok"]
    out.exit_code = 1 if bad else 0
    echo(f"[exp {name}] report {out.report / 'report.md'}; ran {len(out.ran)}, skipped "
         f"{len(out.skipped)}, failed {len(out.failed)} in "
         f"{fmt_duration(time.perf_counter() - start)}"
         + (f"; variants not ok: {bad}" if bad else ""))
    return out
