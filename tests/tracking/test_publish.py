"""What a pipeline run shows when it ends: rendering without an orchestrator."""
from __future__ import annotations

from pathlib import Path

from components.common.stages import StageRun
from components.tracking import publish


def test_decision_markdown_links_and_verdict():
    decision = {"model_name": "m", "version": "3", "promoted": True, "reason": "beats v2",
                "run_id": "abc", "champion": "3", "candidate_metric": 0.2}
    links = {"mlflow_parent_run": "p1", "mlflow_parent_url": "http://ui/#/p1",
             "mlflow_eval_url": "http://ui/#/abc", "model_version_url": "http://ui/#/m/3"}
    md = publish.decision_markdown(decision, links, {"data_hash": "h", "experiment": "e1",
                                                     "overrides": {"a.b": 1}})
    assert md.startswith("# m version 3: PROMOTED to champion\n\nbeats v2")
    assert "[p1](http://ui/#/p1)" in md and "[m v3](http://ui/#/m/3)" in md
    assert "`h`" in md and "dvc exp apply e1" in md and '{"a.b": 1}' in md
    empty = publish.decision_markdown({}, {}, {})
    assert "No promotion decision" in empty and "nothing ran" in empty


def test_tables_and_validation_report(tmp_path: Path):
    assert publish.metric_rows({"b": 0.5, "a": 1, "name": "x", "ok": True}) == [
        {"metric": "a", "value": 1}, {"metric": "b", "value": 0.5}]
    assert publish.stage_rows([StageRun("train", True, 1.234)]) == [
        {"stage": "train", "ran": True, "seconds": 1.23}]
    missing = publish.validation_markdown(tmp_path, failed=True, error=RuntimeError("boom"))
    assert missing.startswith("# Validation FAILED") and "boom" in missing
    (tmp_path / "results" / "validation").mkdir(parents=True)
    (tmp_path / "results" / "validation" / "report.md").write_text("x" * 70_000)
    shown = publish.validation_markdown(tmp_path, failed=False)
    assert shown.startswith("# Validation passed") and "truncated" in shown
    assert publish.read_json(tmp_path / "nope.json") is None
