"""The curation stage end to end: CLI, outputs (the contract), GX suite, errors, atomicity."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.curation.__main__ import main
from components.curation.filters import REASONS, Curator
from components.curation.labels import PhraseMatcher
from components.curation.stage import CurationError, run
from components.data.manifest import sha256_file
from components.data.synthetic import generate, tiny_config
from components.validation.suites.curated import CuratedRules, check_curated


SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """A tiny built-in dataset (4 shapes, captions with colours). Read-only."""
    out = tmp_path_factory.mktemp("curation") / "dataset"
    generate(out, tiny_config(classes=["circle", "triangle", "square", "star"],
                              num_images={"train": 16, "val": 6, "test": 6, "unlabeled": 0}),
             seed=0)
    return out


def _params(tmp_path: Path, dataset: Path, **curation) -> Path:
    params = {"seed": 0, "data": {"out": str(dataset)}}
    if curation:
        params["curation"] = curation
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_cli_end_to_end_writes_the_contract(synthetic, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = _params(tmp_path, synthetic)         # no curation block: the code defaults apply
    assert main(["--params", str(params), "--no-tracking", "--quiet",
                 "--set", "curation.holdout=[red star, square]"]) == 0
    assert "[curate] wrote data/curated" in capsys.readouterr().out
    out = tmp_path / "data" / "curated"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vocabulary"] == ["circle", "triangle", "square", "star"]
    assert manifest["holdout"] == ["red star", "square"]
    assert manifest["source"]["content_hash"] == json.loads(
        (synthetic / "manifest.json").read_text())["content_hash"]
    assert manifest["params"]["phash_max_distance"] == 4
    for split in SPLITS:
        lines = (out / f"{split}.jsonl").read_text().splitlines()
        assert manifest["files"][f"{split}.jsonl"] == sha256_file(out / f"{split}.jsonl")
        counts = manifest["splits"][split]
        assert counts["kept"] == len(lines) and set(counts["removed"]) == set(REASONS)
        assert counts["in"] == counts["kept"] + sum(counts["removed"].values())
        for line in lines:
            rec = json.loads(line)
            assert sorted(rec) == ["caption", "image", "labels", "sha256"]
            assert rec["sha256"] == sha256_file(synthetic / "images" / rec["image"])
            assert rec["labels"] == sorted(set(rec["labels"]))
            if split == "train":
                assert "square" not in rec["caption"] and "red star" not in rec["caption"]
    assert manifest["splits"]["train"]["removed"]["holdout_mention"] > 0
    assert any("square" in json.loads(x)["labels"]
               for x in (out / "val.jsonl").read_text().splitlines())
    report = tmp_path / "results" / "curation"
    assert (report / "report.md").read_text().startswith("# Curation report")
    assert "| holdout_mention |" in (report / "report.md").read_text()
    counts = json.loads((report / "counts.json").read_text())
    assert counts["total"]["in"] == sum(manifest["splits"][s]["in"] for s in SPLITS)
    assert set(json.loads((report / "metrics.json").read_text())) <= {
        "failures", "img_per_s", "kept", "removed"}


def test_help_works(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "curation.out" in capsys.readouterr().out


def test_bad_override_is_a_usage_error(synthetic, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--params", str(_params(tmp_path, synthetic)), "--no-tracking",
              "--set", "curation.phash=3"])
    assert exc.value.code == 2
    assert "unknown key" in capsys.readouterr().err


def test_unreadable_line_names_file_and_line_and_writes_nothing(tmp_path, dataset, monkeypatch,
                                                                 capsys):
    monkeypatch.chdir(tmp_path)
    cap = dataset / "captions" / "val.jsonl"
    cap.write_text(cap.read_text() + '{"image": "val/0.png", "caption": \n')
    assert main(["--params", str(_params(tmp_path, dataset)), "--no-tracking", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{cap}:4: unreadable line" in err and "fix or remove the line" in err
    assert not (tmp_path / "data" / "curated").exists()
    assert not (tmp_path / "results" / "curation").exists()


def test_missing_image_names_the_line(tmp_path, dataset, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (dataset / "images" / "test" / "2.png").unlink()
    with pytest.raises(CurationError,
                       match=r"captions/test\.jsonl:3: image 'test/2\.png' not found"):
        run(yaml.safe_load(_params(tmp_path, dataset).read_text()), progress=False)
    assert not (tmp_path / "data" / "curated").exists()


def test_failing_suite_writes_nothing_and_keeps_the_previous_output(tmp_path, dataset,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load(_params(tmp_path, dataset).read_text())
    run(params, progress=False)
    before = (tmp_path / "data/curated/train.jsonl").read_bytes()
    # a labelling bug: a label outside the vocabulary must be caught by the suite
    monkeypatch.setattr(Curator, "label", lambda self, caption: ["unicorn"])
    with pytest.raises(CurationError) as exc:
        run(params, progress=False)
    msg = str(exc.value)
    assert "nothing was written" in msg
    assert "data/curated/train.jsonl:line 1: labels must be class names of the vocabulary" in msg
    assert "unicorn" in msg
    assert (tmp_path / "data/curated/train.jsonl").read_bytes() == before
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".curated")]


def test_suite_names_record_and_rule(tmp_path, dataset):
    good = json.dumps({"image": "train/0.png", "caption": "A picture of two red stars.",
                       "labels": ["star"], "sha256": sha256_file(dataset / "images/train/0.png")})
    bad = [
        good,
        good,                                                        # duplicate pair
        json.dumps({"image": "train/1.png", "caption": "A red star.",
                    "labels": ["star", "circle"], "sha256": "0" * 64}),  # unsorted, bad hash
        json.dumps({"image": "train/9.png", "caption": "   ", "labels": [], "sha256": "x"}),
    ]
    folder = tmp_path / "curated"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(bad) + "\n")
    rules = CuratedRules(vocabulary=("circle", "star"), caption_words=(3, 64),
                         caption_chars=(10, 500), holdout=PhraseMatcher(["red star"]).find)
    failures = [str(f) for f in check_curated(folder, dataset / "images", rules)]
    text = "\n".join(failures)
    assert "train.jsonl:line 1: train captions must not mention a held-out phrase" in text
    assert "train.jsonl:line 2: duplicate (image, caption) pair" in text
    assert "train.jsonl:line 3: curated line must have exactly" in text and "sorted" in text
    assert "train.jsonl:line 3: sha256 must be the image file's sha256" in text
    assert "train.jsonl:line 4: caption must not be empty or blank" in text
    assert "train.jsonl:line 4: image file must exist" in text


def test_clean_curated_set_passes_its_suite(tmp_path, dataset):
    folder = tmp_path / "curated"
    folder.mkdir()
    rec = {"image": "val/1.png", "caption": "An image showing a blue square.",
           "labels": ["square"], "sha256": sha256_file(dataset / "images/val/1.png")}
    (folder / "val.jsonl").write_text(json.dumps(rec) + "\n")
    rules = CuratedRules(vocabulary=("square",), caption_words=(3, 64), caption_chars=(10, 500))
    assert check_curated(folder, dataset / "images", rules) == []
    rec["sha256"] = "0" * 64
    (folder / "val.jsonl").write_text(json.dumps(rec) + "\n")
    assert [f.rule.split(":")[0] for f in check_curated(folder, dataset / "images", rules)] == [
        "sha256 must be the image file's sha256"]
