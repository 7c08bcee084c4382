"""The curation rules on hand-made datasets (components/curation/filters.py via
stage.curate_dataset: real files, real hashes; nothing is written)."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from components.curation.config import CurationConfig
from components.curation.filters import REASONS
from components.curation.stage import curate_dataset

from curation_helpers import make_dataset, scene

CAP = "A picture of a {} on a plain background."


def _cfg(**curation) -> CurationConfig:
    return CurationConfig.from_params({"curation": curation})


def _run(root, **curation):
    cur = curate_dataset(root, _cfg(**curation), progress=False)
    for r in cur.results:                       # every pair is kept or removed exactly once
        c = r.counts()
        assert c["in"] == c["kept"] + sum(c["removed"].values())
        assert set(c["removed"]) == set(REASONS)
    return {r.split: r for r in cur.results}


def _why(result) -> dict[str, str]:
    return {f"{x.pair.image}|{x.pair.line}": x.reason for x in result.removed}


def _jpeg(img: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_exact_duplicate_files_go_but_several_captions_of_one_file_stay(tmp_path):
    root = make_dataset(tmp_path / "ds", {
        "train": [("train/a.png", CAP.format("star")), ("train/a.png", CAP.format("red star")),
                  ("train/copy.png", CAP.format("blue circle")),
                  ("train/b.png", CAP.format("square"))],
        "val": [], "test": []}, {"train/a.png": scene(1), "train/b.png": scene(2)})
    shutil.copy(root / "images/train/a.png", root / "images/train/copy.png")
    train = _run(root, splits=["train"], phash_max_distance=-1)["train"]
    assert [p.image for p, _ in train.kept] == ["train/a.png", "train/a.png", "train/b.png"]
    assert _why(train) == {"train/copy.png|3": "exact_dup_image"}
    assert "same bytes as train/a.png" in train.removed[0].detail


def test_near_duplicates_reencoded_or_resized_are_caught_a_different_image_is_not(tmp_path):
    original = scene(7, size=128)
    smaller = np.asarray(Image.fromarray(original).resize((116, 116), Image.Resampling.BILINEAR))
    root = make_dataset(tmp_path / "ds", {
        "train": [("train/orig.png", CAP.format("star")), ("train/orig.jpg", CAP.format("circle")),
                  ("train/small.png", CAP.format("square")),
                  ("train/other.png", CAP.format("triangle"))],
        "val": [], "test": []},
        {"train/orig.png": original, "train/small.png": smaller, "train/other.png": scene(8, 128)})
    Image.fromarray(_jpeg(original)).save(root / "images/train/orig.jpg", quality=80)
    train = _run(root, splits=["train"], phash_max_distance=4)["train"]
    assert _why(train) == {"train/orig.jpg|2": "near_dup_image",
                           "train/small.png|3": "near_dup_image"}
    assert [p.image for p, _ in train.kept] == ["train/orig.png", "train/other.png"]
    # switched off: all four stay
    assert len(_run(root, splits=["train"], phash_max_distance=-1)["train"].kept) == 4


@pytest.mark.parametrize("mode, kept_lines", [("keep_first", [1, 3, 5]), ("drop_all", [5]),
                                               ("off", [1, 2, 3, 4, 5])])
def test_duplicate_captions(tmp_path, mode, kept_lines):
    images = {f"train/{i}.png": scene(10 + i) for i in range(5)}
    root = make_dataset(tmp_path / "ds", {"train": [
        ("train/0.png", "A red star on grey."), ("train/1.png", "a  RED star on grey. "),
        ("train/2.png", "A blue circle on grey."), ("train/3.png", "A blue circle on grey."),
        ("train/3.png", "A green square on grey.")]}, images)
    # line 2 repeats line 1 after normalisation, line 4 repeats line 3 on another image
    train = _run(root, splits=["train"], duplicate_captions=mode, phash_max_distance=-1)["train"]
    assert [p.line for p, _ in train.kept] == kept_lines
    assert all(x.reason == "dup_caption" for x in train.removed)


def test_identical_pairs_always_go(tmp_path):
    root = make_dataset(tmp_path / "ds", {"train": [("train/0.png", CAP.format("star")),
                                                    ("train/0.png", CAP.format("star"))]},
                        {"train/0.png": scene(1)})
    train = _run(root, splits=["train"], duplicate_captions="off")["train"]
    assert [x.reason for x in train.removed] == ["dup_caption"]


def test_text_and_image_filters(tmp_path):
    images = {f"train/{i}.png": scene(20 + i) for i in range(6)}
    images["train/tiny.png"] = scene(30, size=24)
    images["train/wide.png"] = np.ascontiguousarray(scene(31, size=160)[:40])   # 160x40: 4:1
    root = make_dataset(tmp_path / "ds", {"train": [
        ("train/0.png", "Two stars"),                                   # 2 words
        ("train/1.png", "A " + "very " * 70 + "long caption"),          # 73 words
        ("train/2.png", "красная звезда и синий круг"),                  # not ASCII
        ("train/3.png", "IMG_2031.JPG 0042 1337 ####"),                 # few letters
        ("train/4.png", "Un perro marrón corre por la playa"),          # not English
        ("train/tiny.png", CAP.format("star")), ("train/wide.png", CAP.format("circle")),
        ("train/5.png", CAP.format("triangle"))]}, images)
    train = _run(root, splits=["train"])["train"]
    assert [x.reason for x in train.removed] == [
        "caption_too_short", "caption_too_long", "charset", "charset", "not_english",
        "image_too_small", "aspect_ratio"]
    assert [(p.image, labels) for p, labels in train.kept] == [("train/5.png", ["triangle"])]


def test_holdout_removed_from_train_only_and_labels_extracted(tmp_path):
    pairs = {s: [(f"{s}/0.png", "Two red stars and a circle."),
                 (f"{s}/1.png", "A small red star above a blue square."),
                 (f"{s}/2.png", "A red circle next to a starfish and three stars.")]
             for s in ("train", "val", "test")}
    images = {f"{s}/{i}.png": scene(40 + 3 * k + i) for k, s in enumerate(pairs) for i in range(3)}
    root = make_dataset(tmp_path / "ds", pairs, images)
    out = _run(root, holdout=["red star"])
    assert [x.reason for x in out["train"].removed] == ["holdout_mention"] * 2
    assert [labels for _, labels in out["train"].kept] == [["circle", "star"]]
    for split in ("val", "test"):
        assert [labels for _, labels in out[split].kept] == [
            ["circle", "star"], ["square", "star"], ["circle", "star"]]


def test_require_label_and_custom_vocabulary(tmp_path):
    root = make_dataset(tmp_path / "ds", {"train": [
        ("train/0.png", "A dog sitting on the grass."), ("train/1.png", "Two cats and a dog.")]},
        {"train/0.png": scene(1), "train/1.png": scene(2)})
    train = _run(root, splits=["train"], vocabulary=["cat"], require_label=True)["train"]
    assert [x.reason for x in train.removed] == ["no_label"]
    assert [labels for _, labels in train.kept] == [["cat"]]


def test_train_images_duplicating_val_or_test_are_dropped_from_train(tmp_path):
    leak = scene(50, size=128)
    root = make_dataset(tmp_path / "ds", {
        "train": [("train/leak.png", CAP.format("star")), ("train/ok.png", CAP.format("circle")),
                  ("train/leak2.jpg", CAP.format("square"))],
        "val": [("val/x.png", CAP.format("triangle"))], "test": []},
        {"train/leak.png": leak, "val/x.png": leak, "train/ok.png": scene(51, 128)})
    Image.fromarray(_jpeg(leak)).save(root / "images/train/leak2.jpg")
    out = _run(root)
    assert _why(out["train"]) == {"train/leak.png|1": "eval_overlap",
                                  "train/leak2.jpg|3": "eval_overlap"}
    assert len(out["val"].kept) == 1
    # without the check, the JPEG copy is still a near duplicate within train
    assert _why(_run(root, eval_overlap=False)["train"]) == {"train/leak2.jpg|3": "near_dup_image"}


def test_unknown_or_bad_params_are_named():
    with pytest.raises(KeyError, match="unknown keys"):
        _cfg(phash=3)
    with pytest.raises(ValueError, match="duplicate_captions"):
        _cfg(duplicate_captions="sometimes")
    with pytest.raises(ValueError, match="caption_words"):
        _cfg(caption_words=[5, 2])
