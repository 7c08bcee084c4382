"""The gate and the stages agree (components/validation/suites/coco_contract.md): a dataset the
gate accepts fine-tunes and evaluates; one it rejects is rejected with lines naming the record.

A fixed handful of generated datasets here (hypothesis, derandomized); the long sweep is
``benchmarks/gate_contract_fuzz.py``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.data import layout
from testkit.coco_mutations import MUTATIONS, check, mutate
from testkit.finetune import make_tiny_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("contract") / "ds", validate=False).root


def _copy(base: Path, dst: Path) -> Path:
    shutil.copytree(base, dst)
    return dst


def test_empty_segmentation_validates_with_a_warning_then_trains(base, tmp_path):
    """The issue's case: a non-crowd instance with ``segmentation: []`` (and one without the
    key) in every split is accepted, counted as a warning, trained on its box and evaluated."""
    root = _copy(base, tmp_path / "ds")
    for split in ("train", "val", "test"):
        path = layout.coco_json(root, split)
        coco = json.loads(path.read_text())
        plain = [a for a in coco["annotations"] if not a["iscrowd"]]
        plain[0]["segmentation"] = []
        plain[1].pop("segmentation")
        path.write_text(json.dumps(coco))
    out = check(root, tmp_path, ["seg_empty@all", "seg_absent@all"])
    assert out.accepted and out.warnings == 6
    assert set(out.metrics) >= {"bbox_mAP", "segm_mAP"}
    summary = json.loads((tmp_path / "validation" / "summary.json").read_text())
    assert summary["warnings"] == 6
    assert summary["suites"]["coco"]["warnings_by_rule"] == {
        "instance without a usable mask (box only)": 6}
    assert "Warnings (6)" in (tmp_path / "validation" / "report.md").read_text()


@pytest.mark.parametrize("name, rule", [
    ("rle_bad_counts", "RLE counts must fill height x width exactly"),
    ("rle_garbage_string", "RLE counts must fill height x width exactly"),
    ("rle_wrong_size", "RLE size must equal the image's [height, width]"),
    ("seg_odd", "polygon rings need at least 3 points"),
    ("duplicate_category_name", "category name must be unique within the file"),
])
def test_corrupt_masks_and_names_are_rejected_naming_the_record(base, tmp_path, name, rule):
    root = _copy(base, tmp_path / "ds")
    mutate(root, [name], seed=3)
    out = check(root, tmp_path, [name])
    assert not out.accepted
    assert any(rule in line and ("annotation id=" in line or "category id=" in line)
               for line in out.failures), out.failures


def test_categories_must_agree_across_splits(base, tmp_path):
    root = _copy(base, tmp_path / "ds")
    path = layout.coco_json(root, "val")
    coco = json.loads(path.read_text())
    coco["categories"][0]["name"] = "renamed"
    path.write_text(json.dumps(coco))
    out = check(root, tmp_path, ["renamed category in val"])
    assert not out.accepted
    assert any(line.startswith("annotations/instances_val.json:categories: categories must be "
                               "the same in every split") for line in out.failures), out.failures


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(names=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=2),
       seed=st.integers(0, 10_000))
def test_whatever_the_gate_accepts_trains_and_evaluates(base, tmp_path_factory, names, seed):
    tmp = tmp_path_factory.mktemp("prop")
    root = _copy(base, tmp / "ds")
    done = mutate(root, names, seed)
    check(root, tmp, done)  # raises when the contract breaks


# ---------------------------------------------------------------------------- OpenImages labels
# The same rule where the supervised pretraining method reads its image-level labels
# (components/pretrain/data.py:image_level_labels): accepted -> labels load and a training step
# of the method runs; rejected -> the lines name the CSV line.
def _oi_mutations():
    return {
        "unicode label, listed": lambda rows, header, classes: (
            rows + [[rows[0][0], "synthetic", "/m/kreis ø", "1"]], header,
            classes + [["/m/kreis ø", "kreis ø"]]),
        "verified negative": lambda rows, header, classes: (
            [[*r[:3], "0"] if i == 0 else r for i, r in enumerate(rows)], header, classes),
        "duplicate row": lambda rows, header, classes: (rows + rows[:1], header, classes),
        "extra column": lambda rows, header, classes: (
            [r + ["x"] for r in rows], header + ["Note"], classes),
        "confidence out of range": lambda rows, header, classes: (
            [[*r[:3], "2.5"] if i == 1 else r for i, r in enumerate(rows)], header, classes),
        "confidence not a number": lambda rows, header, classes: (
            [[*r[:3], "yes"] if i == 1 else r for i, r in enumerate(rows)], header, classes),
        "unknown label": lambda rows, header, classes: (
            [[*r[:2], "/m/nope", r[3]] if i == 1 else r for i, r in enumerate(rows)], header,
            classes),
        "image without a file": lambda rows, header, classes: (
            rows + [["999999", "synthetic", rows[0][2], "1"]], header, classes),
        "column missing": lambda rows, header, classes: (
            [r[:2] + r[3:] for r in rows], header[:2] + header[3:], classes),
    }


OI_MUTATIONS = _oi_mutations()
OI_ACCEPTED = {"unicode label, listed", "verified negative", "duplicate row", "extra column"}


@pytest.mark.parametrize("name", sorted(OI_MUTATIONS))
def test_openimages_labels_the_gate_accepts_pretrain(base, tmp_path, name):
    import csv

    import torch

    from components.pretrain.data import image_level_labels
    from components.pretrain.supervised import SupervisedPretrainer
    from components.pretrain.common import build_backbone
    from components.validation import validate_dataset

    root = _copy(base, tmp_path / "ds")
    labels, classes_csv = layout.oi_labels_csv(root, "train"), layout.oi_classes_csv(root)
    with open(labels, newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    with open(classes_csv, newline="", encoding="utf-8") as fh:
        classes = list(csv.reader(fh))
    rows, header, classes = OI_MUTATIONS[name](rows, header, classes)
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    with open(classes_csv, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(classes)
    result = validate_dataset(root, {"decode_images": False}, tmp_path / "val", progress=False)
    assert result.success == (name in OI_ACCEPTED), [str(f) for f in result.failures][:5]
    if not result.success:
        lines = [str(f) for f in result.failures]
        assert any(f.file.endswith("imagelabels.csv") and f.record.startswith("line ")
                   for f in result.failures), lines
        return
    paths, targets, names = image_level_labels(root, "train")
    assert len(paths) == len(targets) and targets.shape[1] == len(names) and all(
        p.is_file() for p in paths)
    model = SupervisedPretrainer(build_backbone("tiny", 64, arch={"embed_dim": 32, "depth": 2,
                                                                  "num_heads": 2}),
                                 embed_dim=32, img_size=64)
    model.set_label_space(names)
    out = model({"image": torch.randn(2, 3, 64, 64), "targets": targets[:2]})
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
