"""Caption checks and class-name matching (components/curation/text.py, labels.py)."""
from __future__ import annotations

import pytest

from components.curation.labels import PhraseMatcher, dataset_vocabulary, plural_forms
from components.curation.text import (ascii_ratio, english_ratio, known_words, length_reason,
                                      letter_ratio, normalize)
from components.data.synthetic.shapes import PLURAL, SHAPES

from curation_helpers import make_dataset


def test_normalize_lowercases_and_collapses_whitespace():
    assert normalize("  A  Red\tStar\n ") == "a red star"


@pytest.mark.parametrize("caption, reason", [
    ("two stars", "caption_too_short"),                 # 2 words < 3
    ("a b c", "caption_too_short"),                     # 5 chars < 10
    ("a red star on grey", None),
    (" ".join(["word"] * 65), "caption_too_long"),      # 65 words > 64
    ("a big " + "x" * 600, "caption_too_long"),         # 3 words but > 500 chars
    ("a " + "x" * 600, "caption_too_short"),            # 2 words: "too short" is checked first
])
def test_length_bounds(caption, reason):
    assert length_reason(caption, (3, 64), (10, 500)) == reason


def test_charset_ratios():
    assert ascii_ratio("a red star") == 1.0
    assert ascii_ratio("红色的星星和蓝色的圆") == 0.0
    assert ascii_ratio("café au lait") > 0.9           # one accented letter is fine
    assert letter_ratio("1234 5678 #### ok") < 0.5
    assert letter_ratio("a red star.") > 0.8


def test_english_ratio_uses_the_vocabulary():
    known = known_words(["traffic light", "traffic lights"])
    assert english_ratio("A picture of two red stars.", known) >= 0.5
    assert english_ratio("traffic lights", known) == 1.0
    assert english_ratio("Un perro marrón corre por la playa", known) < 0.2
    assert english_ratio("12345", known) == 0.0


def test_plural_forms_agree_with_the_synthetic_shapes():
    for name in SHAPES:
        assert plural_forms(name) == [name, PLURAL[name]]
    assert plural_forms("Traffic Light") == ["traffic light", "traffic lights"]
    assert plural_forms("person") == ["person", "people"]
    assert plural_forms("butterfly") == ["butterfly", "butterflies"]
    assert plural_forms("sheep") == ["sheep"]


def test_labels_match_whole_words_singular_and_plural():
    m = PhraseMatcher(["star", "circle", "traffic light", "cross"])
    assert m.find("Two STARS and a circle.") == ["circle", "star"]
    assert m.find("A starfish on the sand") == []                 # word boundary
    assert m.find("a superstar, crosswalk and circles") == ["circle"]
    assert m.find("three traffic  lights; one cross") == ["cross", "traffic light"]
    assert m.find("a star-shaped cookie") == ["star"]


def test_holdout_phrases_match_compositions_only():
    h = PhraseMatcher(["red star", "blue circle"])
    assert h.find("A small red star above a square.") == ["red star"]
    assert h.find("Two red stars and a circle.") == ["red star"]
    assert h.find("A red circle and a blue star.") == []          # colours swapped
    assert h.find("A blue circle.") == ["blue circle"]


def test_vocabulary_from_coco_categories_then_openimages(tmp_path):
    root = make_dataset(tmp_path / "c", {"val": [], "train": []}, classes=["dog", "cat"])
    names, source = dataset_vocabulary(root, ["train", "val", "test"])
    assert names == ["dog", "cat"]
    assert source.startswith("annotations/instances_train.json")
    oi = tmp_path / "o"
    (oi / "openimages").mkdir(parents=True)
    (oi / "openimages" / "class-descriptions.csv").write_text(
        "LabelName,DisplayName\n/m/01,Tortoise\n/m/02,Sea turtle\n")
    assert dataset_vocabulary(oi, ["train"]) == (["Tortoise", "Sea turtle"],
                                                 "openimages/class-descriptions.csv")
    assert dataset_vocabulary(tmp_path / "none", ["train"]) == ([], "none")
