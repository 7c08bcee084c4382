"""components.common.stages: running one dvc stage, classifying failures, params copies."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from components.common import stages
from components.common.stages import StageError, is_transient, run_logged, write_params


@pytest.mark.parametrize("code, lines, transient", [
    (75, ["anything"], True),                                    # EX_TEMPFAIL: asked for a retry
    (1, ["requests.exceptions.ConnectionError: Max retries exceeded"], True),
    (1, ["sqlite3.OperationalError: database is locked"], True),
    (1, ["ERROR: Unable to acquire lock. Most likely another DVC process is running"], True),
    (1, ["OSError: [Errno 5] Input/output error"], True),
    (1, ["validation failed: 3 expectations failed, see results/validation/report.md"], False),
    (1, ["KeyError: 'finetune'"], False),
    (-9, ["Connection refused"], False),                         # killed (OOM): not retried
])
def test_failure_classification(code, lines, transient):
    assert is_transient(1, lines, stage_exit=code) is transient


def test_old_transient_message_far_up_the_log_is_ignored():
    lines = ["Connection refused (retrying)"] + ["training..."] * 50 + ["AssertionError: bad"]
    assert not is_transient(1, lines, stage_exit=1)


def test_run_logged_streams_lines_and_throttles_progress_bars(tmp_path: Path):
    code = ("import sys\nprint('start', flush=True)\n"
            "for i in range(200): sys.stderr.write(f'\\r{i}/199 it'); sys.stderr.flush()\n"
            "sys.stderr.write('\\n'); print('end'); sys.exit(3)")
    seen: list[str] = []
    rc, tail, seconds = run_logged([sys.executable, "-c", code], tmp_path, on_line=seen.append,
                                   progress_every=3600)
    assert rc == 3 and seconds > 0
    assert seen[0] == "start" and seen[-1] == "end"
    assert "199/199 it" in seen and len(seen) <= 4, seen   # 200 redraws -> at most one line
    assert tail == seen


def test_repro_runs_then_skips_and_classifies_failures(toy):
    project, env = toy
    first = stages.repro("prepare", project, env, on_line=lambda _: None)
    again = stages.repro("prepare", project, env, on_line=lambda _: None)
    assert first.ran and not again.ran
    assert stages.lock_out_hash(project, "prepare", "data/dataset").endswith(".dir")
    assert stages.lock_out_hash(project, "prepare", "elsewhere") is None

    (project / "params.yaml").write_text(
        (project / "params.yaml").read_text().replace("source: synthetic", "source: corrupt"))
    stages.repro("prepare", project, env, on_line=lambda _: None)
    with pytest.raises(StageError) as err:
        stages.repro("validate", project, env, on_line=lambda _: None)
    assert err.value.stage_exit == 1 and not err.value.transient
    assert "source.txt is corrupt" in str(err.value)

    dvc_yaml = yaml.safe_load((project / "dvc.yaml").read_text())
    dvc_yaml["stages"]["prepare"]["cmd"] = "python -c 'import sys; sys.exit(75)'"
    (project / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml))
    with pytest.raises(StageError) as err:
        stages.repro("prepare", project, env, on_line=lambda _: None)
    assert err.value.stage_exit == 75 and err.value.transient


def test_write_params_applies_overrides_and_keeps_comments(tmp_path: Path):
    src = tmp_path / "params.yaml"
    src.write_text("# top\nfinetune:\n  epochs: 12   # passes\n  lr: 0.1\ndata: {out: d}\n")
    before = src.read_text()
    dst = tmp_path / "ws" / "params.yaml"
    write_params(src, dst, {"finetune.epochs": 1, "data.out": "x"})
    text = dst.read_text()
    assert "# top" in text and "# passes" in text
    assert yaml.safe_load(text) == {"finetune": {"epochs": 1, "lr": 0.1}, "data": {"out": "x"}}
    assert src.read_text() == before
    with pytest.raises(KeyError, match="unknown key"):
        write_params(src, dst, {"finetune.epohcs": 1})
