"""``reports/<name>/``: the experiment's report, rendered from the jobs' ``result.json`` files.

Written atomically (the folder appears whole or not at all; DVC tracks it):

* ``report.md``: what the experiment is, the paper table it mirrors, the exact recipe and
  per-variant overrides, dataset hash, seeds, a table of mean +- spread per variant (failed
  variants shown as failed, without numbers), per-seed runs, date, git commit, command;
* ``results.csv``: one row per variant x seed; ``results.json``: everything, machine-readable;
* ``metrics/<variant>.json``: the seed-mean APs ``dvc metrics show`` prints, a row per variant;
* PNGs: ``ap.png`` (APbox/APmask per variant) plus the experiment's own charts.

The folder is then logged as artifacts (``report/``) on the invocation's MLflow parent run,
tagged ``experiment=<name>``. Rendering needs no training: ``python -m components.experiments
report NAME`` re-renders from the saved results.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from components.common.atomic import atomic_dir
from components.common.dvc_metrics import ap_row
from components.experiments.aggregate import SPREAD, VariantSummary, aggregate
from components.experiments.plan import Job, settings
from components.experiments.plots import bar_chart
from components.experiments.registry import Column, ExperimentSpec, Variant
from components.experiments.variant import read_result

__all__ = ["ReportContext", "collect_results", "write_report", "fmt_stat", "log_to_mlflow",
           "report_dir", "LABELS", "md_table"]

log = logging.getLogger(__name__)

LABELS = {"bbox_mAP": "APbox", "segm_mAP": "APmask", "bbox_mAP_50": "APbox50",
          "segm_mAP_50": "APmask50", "peak_train_mem_mib": "peak train memory (MiB)",
          "train_iter_s": "train iter (s)", "infer_s_per_img": "inference (s/img)"}

SCALE_NOTE = ("These numbers come from small, CPU-sized runs (the recipe above: a tiny ViT, few "
              "epochs, a small synthetic or sampled dataset). They are not expected to match the "
              "paper's absolute values; only comparisons between variants under the same recipe "
              "are meaningful, and with few seeds the spread is large.")


@dataclass
class ReportContext:
    """What an experiment's ``report`` hook sees; PNGs go into ``out`` (the folder being
    written)."""

    spec: ExperimentSpec
    params: Mapping[str, Any]
    section: dict
    seeds: list[int]
    summaries: list[VariantSummary]
    results: dict[tuple[str, int], dict]
    out: Path


def report_dir(params: Mapping[str, Any], name: str) -> Path:
    from components.train.config import resolve_path

    return resolve_path(settings(params)["out"]) / name


def collect_results(jobs: Iterable[Job]) -> dict[tuple[str, int], dict]:
    """``(variant, seed) -> result.json`` for the jobs that have one."""
    out = {}
    for job in jobs:
        res = read_result(job.dir)
        if res is not None:
            out[(job.variant.name, job.seed)] = res
    return out


def fmt_stat(summary: VariantSummary, column: Column) -> str:
    s = summary.stats.get(column.key)
    if s is None:
        return "—"
    text = f"{s.mean:{column.fmt}} ± {s.std:{column.fmt}}"
    if s.n < len(summary.ok_seeds):  # only some seeds measured it: say how many
        text = f"{s.mean:{column.fmt}} (n={s.n})" if s.n == 1 else f"{text} (n={s.n})"
    return text


def _status_cell(s: VariantSummary) -> str:
    if s.status == "ok":
        return "ok"
    if s.status == "failed":
        first = next(iter(s.failed.values())).replace("|", "/").replace("\n", " ")
        return f"**FAILED** (seeds {sorted(s.failed)}): {first[:200]}"
    return f"missing (seeds {s.missing} not run)"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _main_table(spec: ExperimentSpec, summaries: list[VariantSummary]) -> str:
    header = ["variant", *(c.label for c in spec.columns), "seeds ok", "status"]
    rows = [[f"`{s.name}`", *(fmt_stat(s, c) if s.status == "ok" else "—" for c in spec.columns),
             f"{len(s.ok_seeds)}/{len(s.seeds)}", _status_cell(s)] for s in summaries]
    return md_table(header, rows)


def _runs_table(summaries: list[VariantSummary], results: dict[tuple[str, int], dict]) -> str:
    rows = []
    for s in summaries:
        for seed in s.seeds:
            r = results.get((s.name, seed))
            if r is None:
                rows.append([f"`{s.name}`", str(seed), "missing", "—", "—", "—", "—"])
                continue
            ap = r.get("summary", {}).get("bbox_mAP")
            rows.append([f"`{s.name}`", str(seed), r.get("status", "?"),
                         "—" if ap is None or r.get("status") != "ok" else f"{ap:.4f}",
                         f"{r.get('wall_s', 0):.0f}" if r.get("wall_s") is not None else "—",
                         f"`{r.get('finetune_run_id') or '—'}`",
                         f"`{r.get('evaluate_run_id') or '—'}`"])
    return md_table(["variant", "seed", "status", "APbox", "wall (s)", "finetune run",
                      "evaluate run"], rows)


def _csv(summaries: list[VariantSummary], results: dict[tuple[str, int], dict],
         experiment: str) -> str:
    label_keys = sorted({k for s in summaries for k in s.variant.labels})
    metric_keys = sorted({k for r in results.values() for k in (r.get("summary") or {})})
    cols = ["experiment", "variant", "seed", "status", "error", *label_keys, *metric_keys,
            "finetune_run_id", "evaluate_run_id", "config_hash", "data_hash"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for s in summaries:
        for seed in s.seeds:
            r = results.get((s.name, seed)) or {"status": "missing"}
            ok = r.get("status") == "ok"
            row = {"experiment": experiment, "variant": s.name, "seed": seed,
                   "status": r.get("status"), "error": r.get("error") or "",
                   **{k: s.variant.labels.get(k, "") for k in label_keys},
                   **{k: (r.get("summary") or {}).get(k, "") if ok else "" for k in metric_keys},
                   **{k: r.get(k) or "" for k in ("finetune_run_id", "evaluate_run_id",
                                                   "config_hash", "data_hash")}}
            w.writerow(row)
    return buf.getvalue()


def _git() -> dict[str, Any]:
    try:
        from components.tracking.lineage import git_info

        return git_info()
    except Exception:  # noqa: BLE001 (provenance is best effort)
        return {"commit": None, "dirty": None, "branch": None}


def _yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).strip() or "{}"


def _memory_note(results: dict[tuple[str, int], dict]) -> str:
    methods = sorted({r["memory"]["method"] for r in results.values()
                      if r.get("status") == "ok" and r.get("memory", {}).get("method")})
    return "; ".join(methods)


def _render_md(spec: ExperimentSpec, ctx: ReportContext, *, recipe: dict, command: str,
               generated: str, git: dict, charts: list[str], extra: str,
               pipeline_ids: list[str]) -> str:
    ok = [r for r in ctx.results.values() if r.get("status") == "ok"]
    data_hashes = sorted({str(r.get("data_hash")) for r in ok})
    content = sorted({str(r.get("content_hash")) for r in ok if r.get("content_hash")})
    data_root = ctx.params.get("data", {}).get("out")
    lines = [f"# Experiment `{spec.name}`: {spec.title}", "",
             spec.description.strip(), "",
             f"Mirrors **{spec.paper}** of {spec.source}.", "",
             f"> {SCALE_NOTE}", "",
             "## Results", "",
             f"Mean ± {SPREAD} over seeds (sample standard deviation, ddof=1; 0 with one seed). "
             "A variant is aggregated only when all its seeds finished; failed variants show no "
             "numbers.", "",
             _main_table(spec, ctx.summaries), ""]
    measured = {"peak_train_mem_mib", "train_iter_s", "infer_s_per_img"}
    if {c.key for c in spec.columns} & measured and (note := _memory_note(ctx.results)):
        lines += [f"Peak training memory: {note}. Train iteration time: mean of mmengine's "
                  "logged windows (the first, warm-up window excluded). Inference: mean "
                  "`inference_detector` time per image at batch 1 after one warm-up image.", ""]
    if extra.strip():
        lines += [extra.strip(), ""]
    if charts:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    lines += ["## Setup", "",
              f"- dataset: `{data_root}`, DVC hash {', '.join(f'`{h}`' for h in data_hashes) or '—'}"
              f" (content hash {', '.join(f'`{h[:16]}…`' for h in content) or '—'})"
              + ("  **WARNING: the variants ran on different datasets**"
                 if len(data_hashes) > 1 else ""),
              f"- seeds: {ctx.seeds}",
              "- recipe (`experiments.recipe`, applied to every variant after params.yaml):", "",
              "```yaml", _yaml(recipe), "```", "",
              f"- experiment section (`experiments.{spec.name}`): `{json.dumps(ctx.section)}`",
              "- per-variant overrides (applied after the recipe; then `seed`, work dir):", "",
              md_table(["variant", "overrides"],
                        [[f"`{s.name}`", f"`{json.dumps(s.variant.overrides, sort_keys=True)}`"]
                         for s in ctx.summaries]), "",
              "## Runs", "", _runs_table(ctx.summaries, ctx.results), "",
              "## Provenance", "",
              f"- generated: {generated}",
              f"- git commit: `{git.get('commit') or 'unknown'}`"
              + (" (uncommitted changes)" if git.get("dirty") else ""),
              f"- command: `{command}`",
              f"- MLflow pipeline id(s): {', '.join(f'`{p}`' for p in pipeline_ids) or '—'} "
              "(runs tagged `experiment`, `variant`, `seed`; summary metrics `exp/*` on the "
              "finetune runs)", ""]
    return "\n".join(lines)


def _pipeline_ids(results: dict[tuple[str, int], dict], first: str | None) -> list[str]:
    ordered = sorted(results.values(), key=lambda r: str(r.get("finished_at") or ""), reverse=True)
    ids = [first] if first else []
    for r in ordered:
        if (pid := r.get("pipeline_id")) and pid not in ids:
            ids.append(pid)
    return ids


def _variant_metrics(folder: Path, summaries: list[VariantSummary]) -> None:
    """``metrics/<variant>.json``: seed-mean AP columns, the AP spread and the seed count,
    one ``dvc metrics show`` row per variant (:mod:`components.common.dvc_metrics`)."""
    folder.mkdir()
    for s in summaries:
        means = {k: st.mean for k, st in s.stats.items()}
        spread = s.stats.get("bbox_mAP")
        values = ap_row(means, AP_std=spread.std if spread else None, seeds=len(s.ok_seeds),
                        probe_mAP=means.get("probe_mAP"))
        (folder / f"{s.name}.json").write_text(json.dumps(values, indent=2) + "\n")


def write_report(spec: ExperimentSpec, params: Mapping[str, Any], variants: list[Variant],
                 seeds: list[int], results: dict[tuple[str, int], dict], *, command: str,
                 pipeline_id: str | None = None, out: Path | None = None,
                 mlflow: bool = True) -> tuple[Path, list[VariantSummary]]:
    """Render ``reports/<name>/`` (or ``out``); returns (folder, per-variant summaries)."""
    from components.experiments.plan import section

    out = Path(out) if out else report_dir(params, spec.name)
    summaries = aggregate(variants, seeds, results)
    sec = section(spec, params)
    recipe = settings(params)["recipe"]
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    git = _git()
    pipeline_ids = _pipeline_ids(results, pipeline_id)
    with atomic_dir(out) as tmp:
        charts = [bar_chart(summaries, c, tmp / c.file, LABELS).name for c in spec.charts]
        ctx = ReportContext(spec, params, sec, list(seeds), summaries, results, tmp)
        extra = spec.report(ctx) if spec.report is not None else ""
        (tmp / "report.md").write_text(_render_md(
            spec, ctx, recipe=recipe, command=command, generated=generated, git=git,
            charts=charts, extra=extra, pipeline_ids=pipeline_ids))
        (tmp / "results.csv").write_text(_csv(summaries, results, spec.name))
        doc = {"experiment": spec.name, "title": spec.title, "paper": spec.paper,
               "description": spec.description, "generated_at": generated, "git": git,
               "command": command, "seeds": list(seeds), "spread": SPREAD + " (ddof=1)",
               "recipe": recipe, "section": sec, "pipeline_ids": pipeline_ids,
               "variants": [s.as_dict() for s in summaries],
               "runs": [results[k] for k in sorted(results, key=lambda k: (k[1], k[0]))]}
        (tmp / "results.json").write_text(json.dumps(doc, indent=2, sort_keys=True,
                                                     default=str) + "\n")
        _variant_metrics(tmp / "metrics", summaries)
    if mlflow:
        log_to_mlflow(out, spec.name, pipeline_ids)
    return out, summaries


def log_to_mlflow(folder: Path, experiment: str, pipeline_ids: list[str]) -> str | None:
    """Log ``folder`` as ``report/`` artifacts on the first of ``pipeline_ids`` that has an
    MLflow parent run, tagged ``experiment=<name>``; returns that run id (None: no parent run,
    e.g. every job failed before its stages started, or tracking is unavailable)."""
    try:
        from mlflow.tracking import MlflowClient

        from components.tracking.runs import parent_run_id
    except ImportError as exc:
        log.warning("report not logged to MLflow: %s", exc)
        return None
    for pid in pipeline_ids:
        try:
            run_id = parent_run_id(pid)
        except Exception as exc:  # noqa: BLE001 (an odd id or an unreachable store)
            log.warning("report not logged to MLflow (%s): %s", pid, exc)
            continue
        if run_id:
            client = MlflowClient()
            client.set_tag(run_id, "experiment", experiment)
            client.log_artifacts(run_id, str(folder), artifact_path="report")
            return run_id
    print(f"[experiments] note: no MLflow parent run for {pipeline_ids}; report not logged",
          flush=True)
    return None
