"""Lineage: DVC's own dataset hash, git facts, package versions, the manifest fallback."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from components.tracking import lineage


def _tiny_dataset(root: Path) -> Path:
    ds = root / "dataset"
    (ds / "images" / "train" / "sub").mkdir(parents=True)
    (ds / "annotations").mkdir()
    (ds / "images" / "train" / "a.jpg").write_bytes(bytes(range(256)) * 7)
    (ds / "images" / "train" / "sub" / "b.png").write_bytes(b"\x89PNG" + b"\r\n" * 50)
    (ds / "annotations" / "instances_train.json").write_text('{"images": [], "annotations": []}\r\n')
    (ds / "manifest.json").write_text(json.dumps({"schema_version": 1, "content_hash": "abc123"}))
    return ds


def _dvc_add_md5(ds: Path) -> dict:
    """What ``dvc add <ds>`` records (DVC's Python API, in-process: no interpreter start)."""
    from dvc.repo import Repo

    with Repo(str(ds.parent)) as repo:
        repo.add(str(ds))
    return yaml.safe_load((ds.parent / f"{ds.name}.dvc").read_text())["outs"][0]


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory):
    from dvc.repo import Repo

    root = tmp_path_factory.mktemp("dvcproj")
    mp = pytest.MonkeyPatch()
    mp.setenv("DVC_SITE_CACHE_DIR", str(root / ".site-cache"))
    mp.setenv("DVC_NO_ANALYTICS", "1")
    Repo.init(str(root), no_scm=True).close()
    yield root
    mp.undo()


def test_dataset_hash_equals_dvc_add(dvc_project):
    ds = _tiny_dataset(dvc_project)
    ours = lineage.dataset_hash(ds)  # no dvc.lock: computed with dvc_data
    out = _dvc_add_md5(ds)
    assert ours == out["md5"] and ours.endswith(".dir")

    # dvc.lock entry for this folder is used while nfiles/size match ...
    lock = {"schema": "2.0", "stages": {"prepare": {"cmd": "x", "outs": [
        {"path": "dataset", "hash": "md5", "md5": "f" * 32 + ".dir",
         "size": out["size"], "nfiles": out["nfiles"]}]}}}
    (dvc_project / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert lineage.dataset_hash(ds) == "f" * 32 + ".dir"
    assert lineage.dataset_hash(ds, use_lock=False) == out["md5"]

    # ... and ignored once the folder changed behind DVC's back: recomputed, still DVC's value
    (ds / "images" / "train" / "c.jpg").write_bytes(b"new image")
    changed = lineage.dataset_hash(ds)
    assert changed != out["md5"] and changed != "f" * 32 + ".dir"
    assert changed == _dvc_add_md5(ds)["md5"]


def test_data_lineage_tags(tmp_path):
    ds = _tiny_dataset(tmp_path)
    tags = lineage.data_lineage(ds)
    assert tags["data.dvc_hash"] == lineage.dataset_hash(ds)
    assert tags["data.content_hash"] == "abc123"  # the manifest's own content hash
    assert lineage.data_lineage(tmp_path / "missing") == {"data.dir": str(tmp_path / "missing")}
    with pytest.raises(FileNotFoundError):
        lineage.dataset_hash(tmp_path / "missing")


def test_content_hash_without_field_hashes_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"b": 1, "a": [1, 2]}))
    first = lineage.content_hash(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"a": [1, 2], "b": 1}, indent=4))
    assert lineage.content_hash(tmp_path) == first  # canonical JSON: key order/spacing ignored
    (tmp_path / "manifest.json").write_text(json.dumps({"a": [1, 3], "b": 1}))
    assert lineage.content_hash(tmp_path) != first
    assert lineage.content_hash(tmp_path / "nope") is None


def test_git_info_outside_repo_and_in_repo(tmp_path):
    assert lineage.git_info(tmp_path) == {"commit": None, "dirty": None, "branch": None}

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q", "-b", "work"], check=True)
    info = lineage.git_info(tmp_path)
    assert info == {"commit": None, "dirty": False, "branch": "work"}  # no commit yet

    (tmp_path / "f.txt").write_text("1")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert lineage.git_info(tmp_path) == {"commit": head, "dirty": False, "branch": "work"}
    (tmp_path / "f.txt").write_text("2")
    assert lineage.git_info(tmp_path)["dirty"] is True


def test_package_versions_from_metadata():
    import mlflow

    versions = lineage.package_versions()
    assert set(versions) == set(lineage.TRACKED_PACKAGES)
    assert versions["mlflow"] == mlflow.__version__
    assert lineage.package_versions(("no-such-dist-xyz",)) == {"no-such-dist-xyz": None}
    tags = lineage.lineage_tags()
    assert tags["pkg.mlflow"] == mlflow.__version__
