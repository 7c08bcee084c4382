"""Aggregation, report rendering and the runner's bookkeeping (resume, failures) without
training: jobs are run by a stand-in launcher that writes result.json as a job would."""
from __future__ import annotations

import csv
import json
import math

import pytest

import components.experiments  # noqa: F401
from components.common.params import load_params
from components.experiments.aggregate import aggregate
from components.experiments.measure import PeakMemory, train_iter_time, val_curve
from components.experiments.plan import resume_key
from components.experiments.registry import Variant, get_experiment
from components.experiments.report import write_report
from components.experiments.runner import run_experiment

PNG = b"\x89PNG\r\n\x1a\n"


def _ok(variant: str, seed: int, ap: float, **extra) -> dict:
    return {"experiment": "fpn", "variant": variant, "seed": seed, "status": "ok", "error": None,
            "summary": {"bbox_mAP": ap, "segm_mAP": ap / 2, "bbox_mAP_50": 2 * ap,
                        "segm_mAP_50": ap, "peak_train_mem_mib": 100.0 + seed,
                        "train_iter_s": 1.0, "infer_s_per_img": 0.1},
            "data_hash": "abc.dir", "finetune_run_id": f"ft{variant}{seed}",
            "evaluate_run_id": f"ev{variant}{seed}", "wall_s": 10.0, **extra}


def _failed(variant: str, seed: int, error: str) -> dict:
    return {"experiment": "fpn", "variant": variant, "seed": seed, "status": "failed",
            "error": error, "summary": {"bbox_mAP": 0.9}}  # numbers that must never show


V = [Variant("multiscale", {"model.adapter": "multiscale"}),
     Variant("single", {"model.adapter": "single"}),
     Variant("simple", {"model.adapter": "simple"})]
RESULTS = {("multiscale", 0): _ok("multiscale", 0, 0.1), ("multiscale", 1): _ok("multiscale", 1, 0.3),
           ("single", 0): _ok("single", 0, 0.2), ("single", 1): _failed("single", 1, "Boom: oom"),
           ("simple", 0): _ok("simple", 0, 0.5)}


def test_aggregate_mean_std_and_failed_or_missing_seeds_excluded():
    ms, single, simple = aggregate(V, [0, 1], RESULTS)
    assert ms.status == "ok" and ms.ok_seeds == [0, 1]
    assert ms.stats["bbox_mAP"].mean == pytest.approx(0.2)
    assert ms.stats["bbox_mAP"].std == pytest.approx(math.sqrt(0.02))   # sample std, ddof=1
    assert (ms.stats["peak_train_mem_mib"].min, ms.stats["peak_train_mem_mib"].max) == (100, 101)
    assert single.status == "failed" and single.failed == {1: "Boom: oom"} and not single.stats
    assert simple.status == "missing" and simple.missing == [1] and not simple.stats
    (one,) = aggregate(V[:1], [0], RESULTS)
    assert one.stats["bbox_mAP"].std == 0.0 and one.stats["bbox_mAP"].n == 1


def test_report_shows_failed_variant_without_numbers(tmp_path):
    params = load_params()
    out, summaries = write_report(get_experiment("fpn"), params, V, [0, 1], RESULTS,
                                  command="python -m components.experiments run fpn",
                                  out=tmp_path / "fpn", mlflow=False)
    assert sorted(p.name for p in out.iterdir()) == ["ap.png", "metrics", "report.md",
                                                     "results.csv", "results.json"]
    # one dvc-metrics row per variant: seed means of the AP columns; a failed variant has none
    multiscale = json.loads((out / "metrics" / "multiscale.json").read_text())
    assert multiscale["AP"] == 0.2 and multiscale["seeds"] == 2 and multiscale["AP_std"] > 0
    assert json.loads((out / "metrics" / "single.json").read_text()) == {"seeds": 1}
    md = (out / "report.md").read_text()
    assert "| `multiscale` | 0.2000 ± 0.1414 | 0.1000 ± 0.0707 |" in md
    row = next(line for line in md.splitlines() if line.startswith("| `single` | "))
    assert "**FAILED** (seeds [1]): Boom: oom" in row and "0.9" not in row and "0.2000" not in row
    assert "missing (seeds [1] not run)" in md
    assert "Table 2" in md and "arXiv 2111.11429" in md and "need not" not in md.lower()
    assert "not expected to match the paper" in md and "`abc.dir`" in md
    assert "python -m components.experiments run fpn" in md and "seeds: [0, 1]" in md
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [
        ("multiscale", "0", "ok"), ("multiscale", "1", "ok"), ("single", "0", "ok"),
        ("single", "1", "failed"), ("simple", "0", "ok"), ("simple", "1", "missing")]
    assert rows[3]["bbox_mAP"] == "" and rows[3]["error"] == "Boom: oom"
    doc = json.loads((out / "results.json").read_text())
    assert [v["status"] for v in doc["variants"]] == ["ok", "failed", "missing"]
    assert doc["variants"][1]["stats"] == {}
    assert (out / "ap.png").read_bytes()[:8] == PNG


def test_attention_and_transfer_reports_draw_their_charts(tmp_path):
    params = load_params()
    att = [Variant("windowed", {}), Variant("global", {})]
    res = {("windowed", 0): _ok("windowed", 0, 0.1), ("global", 0): _ok("global", 0, 0.2)}
    out, _ = write_report(get_experiment("attention"), params, att, [0], res, command="c",
                          out=tmp_path / "att", mlflow=False)
    for name in ("ap.png", "memory.png", "time.png"):
        assert (out / name).read_bytes()[:8] == PNG
    assert "| `global` | 0.2000 ± 0.0000 | 100 ± 0 |" in (out / "report.md").read_text()

    tv = [Variant(f"{i}-tiny-ep{e}", {}, {"init": i, "size": "tiny", "epochs": e})
          for i in ("random", "mae") for e in (1, 2)]
    pre = {"pretrain": {"images": 300, "data_kind": "unlabeled", "data_root": "/d/dataset",
                        "epochs": 8}}
    res = {(v.name, s): _ok(v.name, s, 0.1 * (k + 1) + 0.01 * s, inputs=pre)
           for k, v in enumerate(tv) for s in (0, 1)}
    res[("random-tiny-ep2", 1)] = _failed("random-tiny-ep2", 1, "VariantError: not found")
    out, _ = write_report(get_experiment("transfer"), params, tv, [0, 1], res, command="c",
                          out=tmp_path / "tr", mlflow=False)
    md = (out / "report.md").read_text()
    assert "Table 1 analogue: initialisation x size at 2 fine-tuning epochs" in md
    assert "| `mae` | tiny | 300 unlabeled images of `dataset`, 8 ep | 0.4050 ± 0.0071 |" in md
    assert "| `random` | tiny | 300 unlabeled images of `dataset`, 8 ep | failed |" in md
    assert (out / "figure2.png").read_bytes()[:8] == PNG and "![figure 2](figure2.png)" in md


class FakeJobs:
    """Stands in for the job process: writes the result.json a real job would."""

    def __init__(self, config_hash: str = "h1", fail: tuple[str, ...] = ()):
        self.config_hash, self.fail, self.calls, self.envs = config_hash, fail, [], []

    def hash(self, params, folder) -> str:
        return self.config_hash

    def launch(self, request, log_file, env) -> int:
        req = json.loads(request.read_text())
        self.calls.append(f"{req['variant']}-s{req['seed']}")
        self.envs.append(env)
        log_file.write_text("job log line\n")
        if req["variant"] in self.fail:
            return 9  # dies without a result (killed, out of memory...)
        res = _ok(req["variant"], req["seed"], 0.1,
                  resume_key=resume_key(self.config_hash, req["params"], req["inference_images"],
                                         req["labels"]))
        (request.parent / "result.json").write_text(json.dumps(res))
        return 0


@pytest.fixture
def params(tmp_path):
    p = load_params()
    p["experiments"] = {"work_dir": str(tmp_path / "runs"), "out": str(tmp_path / "reports"),
                        "seeds": [0], "recipe": {}}
    return p


def _run(params, jobs: FakeJobs, **kw):
    return run_experiment("fpn", params, variants=["multiscale", "single"], launch=jobs.launch,
                          config_hash=jobs.hash, echo=lambda s: None, **kw)


def test_rerun_skips_jobs_whose_config_hash_is_unchanged(params):
    first = FakeJobs()
    out = _run(params, first)
    assert out.exit_code == 0 and first.calls == ["multiscale-s0", "single-s0"]
    assert all(e["VITDET_PIPELINE_ID"] == out.pipeline_id for e in first.envs)
    assert out.pipeline_id.startswith("exp-fpn-")
    again = FakeJobs()
    out = _run(params, again)
    assert again.calls == [] and out.skipped == ["multiscale-s0", "single-s0"]
    assert out.exit_code == 0 and (out.report / "report.md").is_file()
    changed = FakeJobs(config_hash="h2")
    assert _run(params, changed).ran == ["multiscale-s0", "single-s0"]
    forced = FakeJobs(config_hash="h2")
    assert _run(params, forced, force=True).ran == ["multiscale-s0", "single-s0"]


def test_a_crashed_job_is_failed_and_the_others_go_on(params):
    jobs = FakeJobs(fail=("multiscale",))
    out = _run(params, jobs)
    assert jobs.calls == ["multiscale-s0", "single-s0"]
    assert out.exit_code == 1 and out.failed == ["multiscale-s0"] and out.ran == ["single-s0"]
    res = out.results[("multiscale", 0)]
    assert res["status"] == "failed" and "exited with status 9" in res["error"]
    assert "job log line" in res["error"]
    md = (out.report / "report.md").read_text()
    assert "| `multiscale` | — | — | — | — | 0/1 | **FAILED**" in md
    retry = FakeJobs()
    assert _run(params, retry).ran == ["multiscale-s0"]   # a failed result is never reused


def test_transfer_missing_backbone_fails_before_starting(params, tmp_path):
    params["pretrain"]["out"] = str(tmp_path / "nothing")
    params["experiments"]["transfer"] = {"inits": ["mae"], "sizes": ["tiny"], "epochs": [1]}
    jobs = FakeJobs()
    out = run_experiment("transfer", params, launch=jobs.launch, config_hash=jobs.hash,
                         echo=lambda s: None)
    assert jobs.calls == [] and out.exit_code == 1
    assert "dvc repro pretrain_mae" in out.results[("mae-tiny-ep1", 0)]["error"]
    assert "dvc repro pretrain_mae" in (out.report / "report.md").read_text()


def test_train_iter_time_skips_the_warmup_window_and_val_rows():
    rows = [{"loss": 1.0, "time": 9.0, "step": 1}, {"coco/bbox_mAP": 0.1, "time": 50.0, "step": 1},
            {"loss": 1.0, "time": 2.0, "step": 2}, {"loss": 1.0, "time": 4.0, "step": 3},
            {"coco/bbox_mAP": 0.3, "coco/segm_mAP": 0.2, "time": 50.0, "step": 2}]
    t = train_iter_time(rows)
    assert t["train_iter_s"] == pytest.approx(3.0) and t["warmup_excluded"] and t["windows"] == 2
    assert train_iter_time(rows[:1])["warmup_excluded"] is False
    assert val_curve(rows) == [{"epoch": 1, "bbox_mAP": 0.1},
                               {"epoch": 2, "bbox_mAP": 0.3, "segm_mAP": 0.2}]


def test_peak_memory_sees_an_allocation_freed_inside_the_block():
    with PeakMemory("cpu") as mem:
        block = bytearray(300 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])   # touch every page
        del block
    assert mem.peak_mib > 250 and "RSS" in mem.method
