"""``python -m components.tracking``: the register stage end to end, rollback and show."""
from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from components.common.env import PROJECT_ROOT
from components.common.params import load_params
from components.tracking import cli, runs
from components.tracking.promotion import CHALLENGER, CHAMPION, MlflowRegistry
from components.tracking.runs import ensure_experiment, parent_run_id, stage_run
from tracking_helpers import unique

H1 = "c" * 32 + ".dir"


@pytest.fixture
def setup(tmp_path, monkeypatch, tiny_model_files):
    exp, model = unique("exp"), unique("model")
    monkeypatch.setenv(runs.PIPELINE_ENV, unique("pid"))
    params = load_params()
    params["data"]["out"] = str(tmp_path / "dataset")
    params["register"].update(model_name=model, min_ap=0.1, margin=0.01)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    config, weights = tiny_model_files
    metrics = {"bbox_mAP": 0.3, "segm_mAP": 0.25, "bbox_mAP_50": 0.5, "split": "test",
               "model_config": str(config), "model_weights": str(weights), "data_hash": H1,
               "finetune_run_id": "ft1"}
    return dict(exp=exp, model=model, params=params, params_file=params_file, metrics=metrics,
                tmp=tmp_path)


def _register(s, metrics: dict, capsys) -> tuple[int, dict, str]:
    path = s["tmp"] / "metrics.json"
    path.write_text(json.dumps(metrics))
    rc = cli.main(["register", "--params", str(s["params_file"]), "--metrics", str(path),
                   "--out", str(s["tmp"] / "register"), "--experiment", s["exp"]])
    out = capsys.readouterr().out
    return rc, json.loads((s["tmp"] / "register" / "decision.json").read_text()), out


def test_register_stage_rollback_and_show(setup, capsys):
    s, client = setup, MlflowClient()
    # the evaluation run the metrics came from (the evaluate stage would have logged it)
    with stage_run("evaluate", s["params"], experiment=s["exp"], tags={"finetune_run_id": "ft1"}) as ev:
        mlflow.log_metrics({"test/bbox_mAP": 0.3})
    rc, decision, out = _register(s, {**s["metrics"], "run_id": ev.info.run_id}, capsys)
    assert rc == 0 and decision["promoted"] and decision["version"] == "1"
    assert "PROMOTED to champion" in out and decision["run_id"] == ev.info.run_id
    aliases = MlflowRegistry().aliases(s["model"])
    assert aliases == {CHAMPION: "1", CHALLENGER: "1"}

    # the register run: nested under the same pipeline parent as evaluate, model logged there
    parent = parent_run_id(experiment=s["exp"])
    reg_runs = client.search_runs([ensure_experiment(s["exp"])], "tags.stage = 'register'")
    assert len(reg_runs) == 1
    reg = reg_runs[0]
    assert reg.data.tags["mlflow.parentRunId"] == parent and reg.info.status == "FINISHED"
    assert reg.data.tags["registry.version"] == "1" and reg.data.metrics["bbox_mAP"] == 0.3
    assert client.get_model_version(s["model"], "1").run_id == reg.info.run_id

    # second model, worse; no run_id in metrics.json: found by its logged test/bbox_mAP
    with stage_run("evaluate", s["params"], experiment=s["exp"], tags={"finetune_run_id": "ft2"}) as ev2:
        mlflow.log_metrics({"test/bbox_mAP": 0.305})
    rc, decision, out = _register(s, {**s["metrics"], "bbox_mAP": 0.305, "finetune_run_id": "ft2"},
                                  capsys)
    assert rc == 0 and not decision["promoted"] and decision["run_id"] == ev2.info.run_id
    assert "not promoted" in out and "margin" in decision["reason"]
    assert MlflowRegistry().aliases(s["model"]) == {CHAMPION: "1", CHALLENGER: "2"}

    # nothing to roll back to: exit 1 and a reason
    assert cli.main(["rollback", "--model", s["model"]]) == 1
    assert "no previous champion" in capsys.readouterr().err
    assert cli.main(["show", "--model", s["model"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["aliases"] == {CHAMPION: "1", CHALLENGER: "2"}
    assert [h["version"] for h in shown["history"]] == ["1"]
    assert cli.main(["show", "--params", str(s["params_file"])]) == 0
    assert "@champion: v1" in capsys.readouterr().out
    assert cli.main(["show", "--model", unique("nope")]) == 1


def test_register_errors_are_clear(setup, capsys):
    s = setup
    with pytest.raises(SystemExit, match="not found: run the evaluate stage first"):
        cli.main(["register", "--params", str(s["params_file"]), "--metrics",
                  str(s["tmp"] / "missing.json"), "--experiment", s["exp"]])
    bad = {k: v for k, v in s["metrics"].items() if k != "model_weights"}
    with pytest.raises(SystemExit, match="model_weights"):
        _register(s, bad, capsys)
    # no run id and no matching evaluate run: refuse rather than trust unknown metrics
    with pytest.raises(SystemExit, match="run_id"):
        _register(s, {**s["metrics"], "bbox_mAP": 0.123456}, capsys)
    assert not (s["tmp"] / "register" / "decision.json").exists()


def test_help_runs_as_module():
    for args in ([], ["register"], ["rollback"], ["show"]):
        out = subprocess.run([sys.executable, "-m", "components.tracking", *args, "--help"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "usage: python -m components.tracking" in out.stdout
