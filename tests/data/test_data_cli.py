from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.common.env import PROJECT_ROOT
from components.data import layout
from components.data.cli import main
from components.data.manifest import read_manifest

TINY_SET = ["--set", "data.synthetic.image_size=64", "--set",
            "data.synthetic.num_images={train: 3, val: 2, test: 1, unlabeled: 1}"]


def _params(tmp_path: Path, **data) -> Path:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"].update(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("command", ["generate", "import-coco", "import-openimages", "import-imagetext", "prepare"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: python -m components.data " + command in capsys.readouterr().out


def test_generate_with_overrides(tmp_path, capsys):
    params = _params(tmp_path)
    assert main(["generate", "--params", str(params), "--out", str(tmp_path / "ds"), *TINY_SET,
                 "--set", "seed=4", "--set", "clutter=0.2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"[data] synthetic -> {tmp_path / 'ds'}: train 3 img/")
    m = read_manifest(tmp_path / "ds")
    assert m["source"]["seed"] == 4 and m["source"]["params"]["clutter"] == 0.2
    assert m["source"]["params"]["image_size"] == 64 and m["unlabeled"] == 1


def test_prepare_synthetic_writes_data_out_relative_to_params(tmp_path):
    params = _params(tmp_path, out="built/ds")
    assert main(["prepare", "--params", str(params), *TINY_SET]) == 0
    assert read_manifest(tmp_path / "built/ds")["splits"]["train"]["images"] == 3


def test_prepare_imports_from_params_paths(tiny_ds, tmp_path):
    shutil.copytree(tiny_ds, tmp_path / "raw")
    params = _params(tmp_path, source="coco", out="ds", coco={
        "annotations": {"train": "raw/annotations/instances_train.json",
                        "val": "raw/annotations/instances_val.json"},
        "images": {"train": "raw/images", "val": "raw/images"}})
    assert main(["prepare", "--params", str(params)]) == 0
    m = read_manifest(tmp_path / "ds")
    assert m["source"]["kind"] == "coco"
    assert m["splits"]["val"]["annotations"] == read_manifest(tiny_ds)["splits"]["val"]["annotations"]
    # file_name "train/000001.jpg" relative to raw/images lands under images/train/train/
    assert (tmp_path / "ds/images/train/train/000001.jpg").is_file()


def test_import_subcommands(tiny_ds, tmp_path):
    oi = tiny_ds / layout.OPENIMAGES
    assert main(["import-openimages", "--classes", str(oi / layout.OI_CLASSES),
                 "--bbox", f"val={oi / 'val-annotations-bbox.csv'}",
                 "--labels", f"val={oi / 'val-annotations-human-imagelabels.csv'}",
                 "--images", f"val={tiny_ds / 'images/val'}", "--out", str(tmp_path / "oi")]) == 0
    assert read_manifest(tmp_path / "oi")["splits"]["val"]["images"] == 4
    assert main(["import-imagetext", "--pairs", f"test={tiny_ds / 'captions/test.jsonl'}",
                 "--images", str(tiny_ds / "images"), "--out", str(tmp_path / "it")]) == 0
    assert read_manifest(tmp_path / "it")["captions"] == {"test": 4}


def test_errors_exit_nonzero_with_a_message(tmp_path, capsys):
    params = _params(tmp_path, source="coco")
    assert main(["prepare", "--params", str(params)]) == 2
    assert "data.coco.annotations is empty" in capsys.readouterr().err
    assert main(["generate", "--params", str(params), "--set", "no_such_key=1"]) == 2
    err = capsys.readouterr().err
    assert "no_such_key" in err and "data.synthetic keys" in err
    assert main(["import-coco", "--annotations", "train", "--images", "x", "--out", str(tmp_path / "o")]) == 2
    assert "expected SPLIT=PATH" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "components.data", "generate", "--params",
                           str(_params(tmp_path)), "--out", str(tmp_path / "ds"), *TINY_SET],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "[data] synthetic" in proc.stdout
