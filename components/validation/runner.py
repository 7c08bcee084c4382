"""Run a suite's tables through Great Expectations 1.x and turn the results into failures.

One ephemeral GX context per process, a pandas datasource, one dataframe asset per table,
``result_format=COMPLETE`` with ``unexpected_index_column_names`` so each offending row comes
back with its ``file``/``record``. GX is imported lazily (~4-5 s): ``--help`` stays fast.

Foreign keys (annotation -> image) are precomputed boolean columns rather than
``ExpectColumnValuesToBeInSet(value_set=<all image ids>)``: GX re-serialises the value set for
every metric it computes, which took 1.3 s for 5k ids and grows linearly (COCO has 118k).
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from components.validation.result import ExpectationOutcome, Failure
from components.validation.suites.base import Table
from components.validation.tables import show

INDEX_COLUMNS = ["_row", "file", "record"]
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": INDEX_COLUMNS}
_context: dict[str, Any] = {}
_names = itertools.count()


def gx_datasource():
    """The process-wide ephemeral context's pandas datasource (imports GX on first use)."""
    if "ds" not in _context:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        _context["gx"] = gx
        _context["ctx"] = ctx
        _context["ds"] = ctx.data_sources.add_pandas("dataset_validation")
    return _context["gx"], _context["ds"]


def table_warnings(table: Table) -> list[Failure]:
    """The table's warning rows as ``file:record: rule: why`` findings (no GX: plain pandas)."""
    out = []
    for w in table.warnings:
        if w.column not in table.df:
            continue
        hit = table.df[table.df[w.column].map(lambda v: v is True)]
        whys = hit[w.why] if w.why and w.why in hit else [None] * len(hit)
        for file, record, why in zip(hit["file"], hit["record"], whys):
            out.append(Failure(str(file), str(record), f"{w.rule}: {why}" if why else w.rule))
    return out


def validate_table(table: Table, data_docs: Path | None = None,
                   ) -> tuple[list[ExpectationOutcome], list[Failure], float]:
    """Validate one table in one GX run. Empty tables are skipped (nothing to check).

    ``data_docs``: also render GX Data Docs into this folder (via a Checkpoint with
    ``UpdateDataDocsAction``; optional because its HTML loads CSS/JS from CDNs).
    """
    if table.df.empty:
        return [], [], 0.0
    t0 = time.perf_counter()
    result = _run_gx(table, f"{table.name}-{next(_names)}", data_docs)
    outcomes, failures = [], []
    for res in result.results:
        outcome, fails = _interpret(table, res)
        outcomes.append(outcome)
        failures.extend(fails)
    return outcomes, failures, time.perf_counter() - t0


def _run_gx(table: Table, name: str, data_docs: Path | None):
    gx, ds = gx_datasource()
    batch_def = ds.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
    suite = gx.ExpectationSuite(name=name, expectations=table.expectations)
    if data_docs is None:
        batch = batch_def.get_batch(batch_parameters={"dataframe": table.df})
        return batch.validate(suite, result_format=RESULT_FORMAT)
    from great_expectations.checkpoint import UpdateDataDocsAction

    ctx = _context["ctx"]
    site = _docs_site(ctx, Path(data_docs))
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_def, suite=ctx.suites.add(suite)))
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=name, validation_definitions=[definition], result_format=RESULT_FORMAT,
        actions=[UpdateDataDocsAction(name="data_docs", site_names=[site])]))
    run = checkpoint.run(batch_parameters={"dataframe": table.df})
    return next(iter(run.run_results.values()))


def _docs_site(ctx, folder: Path) -> str:
    sites = _context.setdefault("sites", {})
    key = str(folder.resolve())
    if key not in sites:
        sites[key] = f"site{len(sites)}"
        ctx.add_data_docs_site(site_name=sites[key], site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": key},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    return sites[key]


def _interpret(table: Table, res) -> tuple[ExpectationOutcome, list[Failure]]:
    conf = res.expectation_config
    kwargs = conf.kwargs
    meta = conf.meta or {}
    column = kwargs.get("column") or ",".join(
        kwargs.get("column_list") or [kwargs.get("column_A", ""), kwargs.get("column_B", "")])
    rule = meta.get("rule") or conf.type
    error = _exception(res.exception_info)
    rows = (res.result or {}).get("unexpected_index_list") or []
    outcome = ExpectationOutcome(table=table.name, expectation=conf.type, column=column,
                                 rule=rule, success=bool(res.success), unexpected=len(rows),
                                 error=error)
    if res.success:
        return outcome, []
    if error:
        file = ", ".join(sorted(set(table.df["file"])))
        return outcome, [Failure(file, "-", f"{rule}: GX {conf.type} on {column} raised {error}")]
    if not rows:
        file = ", ".join(sorted(set(table.df["file"])))
        return outcome, [Failure(file, "-", rule)]
    why_col = meta.get("why")
    failures = []
    for hit in rows:
        i = int(hit["_row"])
        why = table.df.at[i, why_col] if why_col in table.df.columns else None
        if not isinstance(why, str):
            shown = [f"{k}={show(v)}" for k, v in hit.items()
                     if k not in INDEX_COLUMNS and not isinstance(v, bool) and
                     type(v).__name__ != "bool_"]
            lead = "duplicate" if conf.type == "expect_compound_columns_to_be_unique" else "got"
            why = f"{lead} {', '.join(shown)}" if shown else None
        failures.append(Failure(str(table.df.at[i, "file"]), str(table.df.at[i, "record"]),
                                f"{rule}: {why}" if why else rule))
    return outcome, failures


def _exception(info: Any) -> str | None:
    """GX puts an expectation's exception either at top level or keyed by metric."""
    if not info:
        return None
    infos = [info] if "raised_exception" in info else list(info.values())
    for item in infos:
        item = item if isinstance(item, dict) else getattr(item, "__dict__", {})
        if item.get("raised_exception"):
            return str(item.get("exception_message") or "an exception")
    return None


def table_rows(tables: list[Table]) -> int:
    return int(sum(len(t.df) for t in tables))

