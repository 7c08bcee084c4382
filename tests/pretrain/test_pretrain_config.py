"""Config resolution: defaults without a params block, precedence, unknown keys, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.common.params import apply_overrides
from components.pretrain import get_method
from components.pretrain.__main__ import main
from components.pretrain.config import SHARED_DEFAULTS, config_from_params, with_defaults

BASE = {"seed": 3, "data": {"out": "data/dataset"},
        "model": {"size": "small", "patch_size": 16, "pretrain_img_size": 96}}


def test_defaults_apply_without_a_pretrain_block() -> None:
    spec = get_method("mae")
    cfg = config_from_params(BASE, "mae", spec.defaults)
    assert (cfg.size, cfg.img_size, cfg.seed, cfg.grid) == ("small", 96, 3, 6)
    assert cfg.epochs == spec.defaults["epochs"] and cfg.lr == spec.defaults["lr"]
    assert cfg.batch_size == SHARED_DEFAULTS["batch_size"]
    assert cfg.opt("mask_ratio") == 0.75 and "epochs" not in cfg.options
    assert cfg.out_dir.parts[-2:] == ("pretrained", "mae") and cfg.out_dir.is_absolute()


def test_method_keys_beat_shared_keys() -> None:
    spec = get_method("mae")
    params = {**BASE, "pretrain": {"lr": 0.5, "max_steps": 7, "batch_size": 8,
                                   "mocov3": {"lr": 0.2}, "mae": {"batch_size": 4}}}
    cfg = config_from_params(params, "mae", spec.defaults)
    assert cfg.lr == spec.defaults["lr"]          # MAE registers its own lr
    assert (cfg.max_steps, cfg.batch_size) == (7, 4)
    assert config_from_params(params, "mocov3", get_method("mocov3").defaults).lr == 0.2
    assert config_from_params(params, "random", {}).lr == 0.5  # no own lr: the shared one


def test_unknown_keys_are_named() -> None:
    with pytest.raises(KeyError, match="mask_ration"):
        config_from_params({**BASE, "pretrain": {"mae": {"mask_ration": 0.5}}}, "mae",
                           get_method("mae").defaults)
    filled = with_defaults(BASE, "mae", get_method("mae").defaults)
    assert apply_overrides(filled, {"pretrain.mae.mask_ratio": 0.6})["pretrain"]["mae"]["mask_ratio"] == 0.6
    with pytest.raises(KeyError):
        apply_overrides(filled, {"pretrain.mae.mask_ration": 0.6})


def _params(tmp_path: Path, ds: Path) -> Path:
    params = {"seed": 0, "data": {"out": str(ds)},
              "model": {"size": "tiny", "patch_size": 16, "pretrain_img_size": 32}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_cli_trains_and_logs_a_nested_mlflow_run(pretrain_ds: Path, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    out = tmp_path / "pretrained"
    rc = main(["--params", str(_params(tmp_path, pretrain_ds)), "--method", "mae", "--quiet",
               "--set", f"pretrain.out={out}", "--set", "pretrain.max_steps=2",
               "--set", "pretrain.mae.batch_size=4", "--set", "pretrain.mae.decoder_depth=1"])
    assert rc == 0
    meta = json.loads((out / "mae" / "meta.json").read_text())
    assert meta["steps"] == 2 and meta["img_size"] == 32 and meta["options"]["decoder_depth"] == 1
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.stage = 'pretrain-mae'")
    assert runs, "no MLflow stage run named pretrain-mae"
    run = runs[0]
    assert run.data.tags.get("mlflow.parentRunId") and run.info.status == "FINISHED"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1]
    assert "throughput_img_s" in run.data.metrics


def test_cli_errors_are_actionable(pretrain_ds: Path, tmp_path: Path, capsys) -> None:
    params = str(_params(tmp_path, pretrain_ds))
    with pytest.raises(SystemExit):
        main(["--params", params, "--method", "nope"])
    assert "known" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--params", params, "--method", "mae", "--set", "pretrain.mae.mask_ration=1"])
    assert "unknown key" in capsys.readouterr().err
    rc = main(["--params", params, "--method", "beit", "--no-tracking", "--quiet",
               "--set", f"pretrain.out={tmp_path / 'o'}",
               "--set", f"pretrain.beit.tokenizer={tmp_path / 'missing.safetensors'}"])
    assert rc == 1 and "run the tokenizer stage first" in capsys.readouterr().err
    assert not (tmp_path / "o" / "beit").exists()
