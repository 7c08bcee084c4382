"""The proposal cache: reuse on (sha256, model version), stale and missing entries, atomicity."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from proposals_helpers import make_params

from components.proposals.bing import BingModel, load_model, save_model
from components.proposals.cache import (MissingProposalsError, StaleProposalsError,
                                        load_proposals)
from components.proposals.data import ImageReadError, read_image, read_split
from components.proposals.stage import model_path, propose_stage


@pytest.fixture
def params(trained, ds_copy: Path, tmp_path: Path) -> dict:
    """Stage params on a private copy of the dataset, with the session's trained model."""
    trained_params, _ = trained
    return make_params(ds_copy, tmp_path, out=trained_params["proposals"]["out"], top_k=20,
                       splits=["val"])


def _counts(summary: dict, split: str = "val") -> tuple[int, int]:
    c = summary["splits"][split]
    return c["reused"], c["computed"]


def test_second_run_reuses_every_entry(params: dict, ds_copy: Path) -> None:
    first = propose_stage(params, progress=False)
    n = first["splits"]["val"]["images"]
    assert n == 12 and _counts(first) == (0, n)
    assert _counts(propose_stage(params, progress=False)) == (n, 0)

    path = Path(params["proposals"]["cache_dir"]) / "val.npz"
    with np.load(path, allow_pickle=False) as z:            # loads without pickle
        assert z["boxes"].dtype == np.float32 and len(z["names"]) == n
    model = load_model(model_path(params))
    cache = load_proposals(path, model_version=model.version)
    rec = read_split(ds_copy, "val")[3]
    expected = model.propose(read_image(rec.path)[0], 20)
    np.testing.assert_array_equal(cache.boxes_for(rec.file_name), expected)
    np.testing.assert_array_equal(cache.boxes_for(rec.path), expected)    # a path works too
    assert cache.boxes_for(rec.file_name).shape == (20, 5)


def test_changed_image_is_stale_and_recomputed_alone(params: dict, ds_copy: Path) -> None:
    propose_stage(params, progress=False)
    rec = read_split(ds_copy, "val")[0]
    img = cv2.imread(str(rec.path))
    cv2.imwrite(str(rec.path), img[:, ::-1])                 # new bytes, same name
    cache = load_proposals(Path(params["proposals"]["cache_dir"]) / "val.npz")
    with pytest.raises(StaleProposalsError, match=rf"{rec.file_name}.*stale.*propose.*--splits val"):
        cache.boxes_for(rec.file_name)
    cache.boxes_for(rec.file_name, verify=False)             # the old entry, on request
    assert _counts(propose_stage(params, progress=False)) == (11, 1)
    load_proposals(Path(params["proposals"]["cache_dir"]) / "val.npz").boxes_for(rec.file_name)


def test_new_model_version_recomputes_everything(params: dict, tmp_path: Path) -> None:
    propose_stage(params, progress=False)
    old = load_model(model_path(params))
    new = BingModel(old.sizes, old.w * 1.01, old.calib, old.active, old.nms_radius, old.per_size)
    save_model(new, tmp_path / "other" / "model.json")
    other = {**params, "proposals": {**params["proposals"], "out": str(tmp_path / "other")}}
    summary = propose_stage(other, progress=False)
    assert _counts(summary) == (0, 12) and summary["version"] == new.version
    path = Path(params["proposals"]["cache_dir"]) / "val.npz"
    with pytest.raises(StaleProposalsError, match="computed with BING model"):
        load_proposals(path, model_version=old.version)


def test_top_k_smaller_reuses_larger_recomputes(params: dict) -> None:
    propose_stage(params, progress=False)
    fewer = {**params, "proposals": {**params["proposals"], "top_k": 5}}
    assert _counts(propose_stage(fewer, progress=False)) == (12, 0)
    cache = load_proposals(Path(params["proposals"]["cache_dir"]) / "val.npz")
    assert cache.top_k == 5 and all(len(b) == 5 for _, b in cache.entries.values())
    assert _counts(propose_stage(params, progress=False)) == (0, 12)        # 20 > 5


def test_missing_entry_names_the_image_and_the_command(params: dict) -> None:
    propose_stage(params, progress=False)
    cache = load_proposals(Path(params["proposals"]["cache_dir"]) / "val.npz")
    with pytest.raises(MissingProposalsError) as err:
        cache.boxes_for("train/000001.jpg")
    assert "train/000001.jpg" in str(err.value)
    assert "python -m components.proposals propose" in str(err.value) and "--splits train" in str(err.value)
    with pytest.raises(FileNotFoundError, match="propose"):
        load_proposals(Path(params["proposals"]["cache_dir"]) / "test.npz")


def test_corrupt_image_is_named_and_no_cache_is_touched(params: dict, ds_copy: Path) -> None:
    propose_stage(params, progress=False)
    cache_dir = Path(params["proposals"]["cache_dir"])
    before = (cache_dir / "val.npz").read_bytes()
    rec = read_split(ds_copy, "val")[5]
    rec.path.write_bytes(b"\xff\xd8 not really a jpeg")
    both = {**params, "proposals": {**params["proposals"], "splits": ["train", "val"]}}
    with pytest.raises(ImageReadError, match=rec.file_name):
        propose_stage(both, progress=False)
    assert (cache_dir / "val.npz").read_bytes() == before          # untouched
    assert sorted(p.name for p in cache_dir.iterdir()) == ["val.npz"]  # no train.npz, no partials


def test_unreadable_cache_is_recomputed_with_a_warning(params: dict, capsys) -> None:
    cache_dir = Path(params["proposals"]["cache_dir"])
    cache_dir.mkdir(parents=True)
    (cache_dir / "val.npz").write_bytes(b"garbage")
    assert _counts(propose_stage(params, progress=False)) == (0, 12)
    assert "cannot read proposal cache" in capsys.readouterr().err
