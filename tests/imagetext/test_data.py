"""What a caption names: UniCL label keys and the colours a listing states."""
from __future__ import annotations

from components.imagetext.data import Concepts, Pair, label_ids, label_keys

SHAPES = ["circle", "triangle", "square", "star"]


def test_label_keys_modes():
    concepts = Concepts(SHAPES)
    pairs = [Pair("a.jpg", "A picture of a red star.", ("star",)),
             Pair("b.jpg", "There is one shape: a small red star.", ("star",)),
             Pair("c.jpg", "A picture of a blue star.", ("star",)),
             Pair("d.jpg", "A picture of no distinct shapes.", ()),
             Pair("e.jpg", "A plain scene with no distinct shapes.", ())]
    keys = label_keys(pairs, "concepts", concepts)
    assert keys[0] == keys[1] == "red star|star" and keys[2] == "blue star|star"
    assert len(set(keys[3:])) == 2  # naming nothing: a label of its own each
    ids, distinct = label_ids(keys)
    assert ids[0] == ids[1] != ids[2] and len(distinct) == 4
    by_labels = label_keys(pairs, "labels")
    assert by_labels[0] == by_labels[1] == by_labels[2] == "star"   # colour ignored
    assert len(set(label_keys(pairs, "pair"))) == 5                # CLIP


def test_listing_colours_and_parse():
    concepts = Concepts(SHAPES)
    caption = ("There are four shapes: two red squares, a small blue star and a circle. "
               "A small red square is to the left of a large green circle.")
    # the first sentence states the squares' and the star's colour; the circle's comes only
    # from the relation sentence, which does not say which circle, so it is not used
    assert concepts.listing_colours(caption) == {"square": "red", "star": "blue"}
    assert concepts.listing_colours("Three circles on a plain background.") == {}
    assert concepts.parse("Red Star") == ("red", "star")
    assert concepts.parse("star") == (None, "star")
    assert concepts.parse("blue") == ("blue", None)
    assert concepts.parse("zebra") == (None, None)
