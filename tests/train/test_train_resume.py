"""Resume after ``kill -9``: the rerun continues from the last checkpoint and is tagged."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import mlflow
import yaml

from components.common.env import PROJECT_ROOT
from components.common.params import load_params
from components.train.finetune import finetune
from testkit.finetune import tiny_params


def _wait_for_checkpoint(proc, state_file, name, log, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training exited early ({proc.returncode}): "
                                 f"{log.read_text()[-3000:]}")
        try:
            if name in json.loads(state_file.read_text()).get("checkpoints", {}):
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"no {name} recorded within {timeout}s")


def test_resume_after_kill(tiny_ds, tmp_path):
    # batch 1: 6 iterations per epoch, so epoch 2 is still running when we kill
    params = tiny_params(load_params(), tiny_ds.root, tmp_path / "work", finetune__epochs=2,
                         finetune__batch_size=1, finetune__val_interval=2)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    work, log = tmp_path / "work", tmp_path / "train.log"
    with open(log, "w") as out:  # a file, not a pipe: a full pipe would stall the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "components.train", "--params", str(params_file),
             "--validated", str(tiny_ds.marker)],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        _wait_for_checkpoint(proc, work / "run_state.json", "epoch_1.pth", log)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert not (work / "final").exists()
    killed = json.loads((work / "run_state.json").read_text())
    assert killed["status"] == "running" and killed["last"] == "epoch_1.pth"

    result = finetune(params, validation_marker=tiny_ds.marker)
    meta = result.meta
    assert meta["resumed_from"] == killed["mlflow_run_id"]
    assert meta["iterations"] == 12 and meta["epochs"] == 2
    client = mlflow.MlflowClient()
    run = client.get_run(meta["finetune_run_id"])
    assert run.data.tags["resumed_from"] == killed["mlflow_run_id"]
    assert client.get_run(killed["mlflow_run_id"]).info.status == "KILLED"
    # the resumed run logged only epoch 2's iterations; the merged log has all of them
    steps = sorted(h.step for h in client.get_metric_history(run.info.run_id, "train/loss"))
    assert steps[0] == 7 and steps[-1] == 12
    log = [json.loads(x) for x in (result.final / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(2, 13, 2))  # log every 2
    assert json.loads((work / "run_state.json").read_text())["status"] == "finished"


def test_untrusted_checkpoint_is_refused(tiny_ds, tmp_path):
    """A checkpoint whose bytes differ from what run_state.json recorded is never unpickled."""
    import pytest
    import torch

    from components.train import resume

    work = tmp_path / "w"
    work.mkdir()
    ckpt = work / "epoch_1.pth"
    torch.save({"meta": {"vitdet_run": {}}, "state_dict": {}}, ckpt)
    (work / "last_checkpoint").write_text(str(ckpt))
    resume.write_state(work, {"config_hash": "x", "status": "running"})
    resume.record_checkpoint(work)
    from mmengine.runner import CheckpointLoader

    assert "meta" in CheckpointLoader.load_checkpoint(resume.trusted_uri(ckpt))
    torch.save({"meta": {"vitdet_run": {}}, "evil": 1}, ckpt)  # replaced after recording
    with pytest.raises(resume.UntrustedCheckpoint, match="SHA-256"):
        CheckpointLoader.load_checkpoint(resume.trusted_uri(ckpt))
    other = tmp_path / "elsewhere.pth"
    torch.save({}, other)
    with pytest.raises(resume.UntrustedCheckpoint):
        CheckpointLoader.load_checkpoint(resume.trusted_uri(other))
