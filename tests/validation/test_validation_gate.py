"""The gate end to end: valid data passes with every suite, unusual-but-valid data passes,
outputs (marker, reports) follow the contract, and the CLI exits/prints as documented."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from validation_helpers import VALIDATION_CFG

from components.common.env import PROJECT_ROOT
from components.validation import validate_dataset
from components.validation.suites import REGISTRY


def test_registry_has_the_documented_suites() -> None:
    assert {"coco", "openimages", "imagetext", "unlabeled"} <= set(REGISTRY)
    for name, suite in REGISTRY.items():
        assert suite.name == name


def test_generated_dataset_passes_and_writes_marker(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = validate_dataset(dataset, VALIDATION_CFG, out, progress=False)
    assert result.success, "\n".join(map(str, result.failures))
    assert set(result.summary["suites"]) == {"coco", "openimages", "imagetext"}
    for name, s in result.summary["suites"].items():
        assert s["success"] and s["failed"] == 0 and s["evaluated"] > 5 and s["rows"] > 0, name
    marker = json.loads((out / "validated.json").read_text())
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert marker["content_hash"] == manifest["content_hash"]
    assert marker["dataset"] == str(dataset)
    assert sorted(marker["suites"]) == ["coco", "imagetext", "openimages"]
    # same data -> same marker bytes, so DVC does not rerun downstream stages after re-validation
    validate_dataset(dataset, VALIDATION_CFG, tmp_path / "again", progress=False)
    assert (tmp_path / "again" / "validated.json").read_bytes() == (out / "validated.json").read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] and summary["suites"]["coco"]["evaluated"] > 0
    page = (out / "report.html").read_text()
    assert "PASS" in page and "<style>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "PASS" in (out / "report.md").read_text()


def test_unusual_but_valid_data_passes(unusual_dataset: Path, tmp_path: Path) -> None:
    result = validate_dataset(unusual_dataset, VALIDATION_CFG, tmp_path / "out", progress=False)
    assert result.success, "\n".join(map(str, result.failures))
    assert set(result.summary["suites"]) == {"coco", "openimages", "imagetext"}
    assert (tmp_path / "out" / "validated.json").exists()


def test_exif_size_must_be_the_rotated_one(unusual_dataset: Path, tmp_path: Path) -> None:
    """Recording the stored (pre-rotation) size is wrong: cv2/mmdet see the rotated image."""
    path = unusual_dataset / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    exif = next(i for i in data["images"] if i["file_name"] == "train/exif.jpg")
    exif["width"], exif["height"] = 40, 24
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != exif["id"]]
    path.write_text(json.dumps(data))
    result = validate_dataset(unusual_dataset, VALIDATION_CFG, tmp_path / "out", progress=False,
                              suites=["coco"])
    assert not result.success
    assert any(f.record == f"image id={exif['id']}" and "record says 40x24 but the file is 24x40"
               in f.rule for f in result.failures), result.failures


def test_broken_image_is_reported_by_every_suite_that_uses_it(dataset: Path,
                                                              tmp_path: Path) -> None:
    (dataset / "images" / "train" / "000001.jpg").write_bytes(b"")
    result = validate_dataset(dataset, VALIDATION_CFG, tmp_path / "out", progress=False)
    files = {f.file.split("/")[0] for f in result.failures if "zero-byte" in f.rule}
    assert files == {"annotations", "openimages", "captions"}


def test_unlabeled_images_are_checked(dataset: Path, tmp_path: Path) -> None:
    folder = dataset / "images" / "unlabeled"
    folder.mkdir()
    (folder / "good.jpg").write_bytes((dataset / "images" / "train" / "000001.jpg").read_bytes())
    (folder / "bad.jpg").write_bytes(b"not an image")
    result = validate_dataset(dataset, VALIDATION_CFG, tmp_path / "out", progress=False,
                              suites=["unlabeled"])
    assert len(result.failures) == 1, result.failures
    assert result.failures[0].file == "images/unlabeled/bad.jpg"
    assert "image header must be readable" in result.failures[0].rule


def test_empty_or_missing_dataset_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "empty", tmp_path / "missing"):
        result = validate_dataset(root, VALIDATION_CFG, tmp_path / "out", progress=False)
        assert not result.success and not (tmp_path / "out" / "validated.json").exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "components.validation", "--params",
                           str(PROJECT_ROOT / "params.yaml"), "--no-progress", *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def test_cli_pass_then_fail_removes_marker(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ok = _cli("--dataset", str(dataset), "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    assert (out / "validated.json").exists()

    path = dataset / "annotations" / "instances_val.json"
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        ann["category_id"] = 999
    path.write_text(json.dumps(data))
    bad = _cli("--dataset", str(dataset), "--out", str(out))
    assert bad.returncode == 1
    assert not (out / "validated.json").exists()
    prefix = "annotations/instances_val.json:annotation id="
    lines = [ln for ln in bad.stderr.splitlines() if ln.startswith(prefix)]
    n = len(data["annotations"])
    assert len(lines) == min(n, 20)
    assert all("category_id must be a category of this file" in ln for ln in lines)
    if n > 20:
        assert f"... {n - 20} more, see report.html" in bad.stderr
    assert "report.html" in bad.stderr


def test_cli_help_is_fast_and_documents_options() -> None:
    res = subprocess.run([sys.executable, "-m", "components.validation", "--help"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for opt in ("--params", "--dataset", "--out"):
        assert opt in res.stdout


def test_optional_gx_data_docs(unusual_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = validate_dataset(unusual_dataset, VALIDATION_CFG, out, progress=False,
                              suites=["imagetext"], data_docs=True)
    assert result.success
    assert (out / "gx-data-docs" / "index.html").exists()
