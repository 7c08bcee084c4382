"""The CLIs end to end on a tiny dataset: pretrain 2 steps, then evaluate without MLflow."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.common.dvc_metrics import COLUMNS
from components.imagetext.__main__ import main as imagetext_main


def test_evaluate_help(capsys):
    with pytest.raises(SystemExit) as exc:
        imagetext_main(["evaluate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--checkpoint-dir" in out and "--no-tracking" in out and "--set" in out


def test_unknown_imagetext_key_is_a_usage_error(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"imagetext": {"shotz": [1]}}))
    with pytest.raises(SystemExit) as exc:
        imagetext_main(["evaluate", "--params", str(params), "--no-tracking"])
    assert exc.value.code == 2 and "shotz" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_then_evaluate(dataset: Path, curated: Path, holdout: list[str], tmp_path: Path):
    import components.pretrain.unicl  # noqa: F401  (registers the method)
    from imagetext_helpers import TINY_TEXT

    from components.common.params import load_params
    from components.pretrain.__main__ import main as pretrain_main

    params = load_params()
    params["data"]["out"] = str(dataset)
    params["curation"] = {"out": str(curated)}
    params["pretrain"]["size"] = "tiny"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    sets = ["pretrain.max_steps=2", f"pretrain.out={tmp_path / 'pretrained'}",
            "pretrain.unicl.batch_size=8", "pretrain.threads=1", "model.pretrain_img_size=64",
            f"pretrain.unicl.curated={curated}",
            *(f"pretrain.unicl.{k}={v}" for k, v in TINY_TEXT.items())]
    argv = ["--params", str(params_file), "--method", "unicl", "--no-tracking", "--quiet"]
    assert pretrain_main(argv + [a for s in sets for a in ("--set", s)]) == 0
    ckpt = tmp_path / "pretrained" / "unicl"
    assert (ckpt / "backbone.safetensors").is_file() and (ckpt / "tokenizer.json").is_file()

    out = tmp_path / "results"
    assert imagetext_main(["evaluate", "--params", str(params_file), "--no-tracking", "--quiet",
                           "--checkpoint-dir", str(ckpt), "--set", f"imagetext.out={out}",
                           "--set", "imagetext.few_shot_repeats=2",
                           "--set", "imagetext.threads=1"]) == 0
    for name in ("report.md", "results.json", "metrics.json", "accuracy.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["holdout"] == holdout
    assert set(results["towers"]) == {"unicl", "random"}
    held = results["sets"]["zs_heldout"]
    assert held["classes"] == holdout and held["crops"] > 0 and held["chance"] == 0.5
    for tower in results["towers"].values():
        for key in ("zs_heldout", "zs_seen_shapes", "linear_probe", "shot_1", "shot_5", "shot_10"):
            assert 0.0 <= tower[key]["accuracy"] <= 1.0, key
    assert set(json.loads((out / "metrics.json").read_text())) <= set(COLUMNS)
    report = (out / "report.md").read_text()
    assert "| UniCL |" in report and "| random-init towers |" in report and "| chance |" in report
