"""Zero-shot: prompt ensembles pick the right class; the tasks built from a hold-out list."""
from __future__ import annotations

import torch

from components.imagetext.crops import Crop, square_box
from components.imagetext.data import Concepts
from components.imagetext.evaluate import zero_shot_tasks
from components.imagetext.zeroshot import class_embeddings, prompts, with_article, zero_shot_scores

SHAPES = ["circle", "triangle", "square", "star"]


def test_prompts_use_the_right_article():
    assert with_article("orange star") == "an orange star" and with_article("red star") == "a red star"
    assert prompts("red star", ["a picture of {}."]) == ["a picture of a red star."]


def test_zero_shot_picks_the_class_whose_prompts_match(tiny_cfg):
    import components.pretrain.unicl  # noqa: F401
    from components.pretrain.registry import get_method

    model = get_method("unicl").build(tiny_cfg())
    towers, tok = model.towers.eval(), model.tokenizer
    classes = ["red star", "blue circle", "green square"]
    clf = class_embeddings(towers, tok, classes)
    assert clf.shape == (3, towers.embed_dim)
    assert torch.allclose(clf.norm(dim=1), torch.ones(3), atol=1e-5)
    # constructed images: each embedding is one class's prompt embedding plus noise
    g = torch.Generator().manual_seed(0)
    images = clf[[2, 0, 1, 1]] + 0.05 * torch.randn(4, clf.shape[1], generator=g)
    assert zero_shot_scores(images, clf).argmax(dim=1).tolist() == [2, 0, 1, 1]
    # one template -> exactly the normalised text embedding of that prompt
    from components.imagetext.tokenizer import encode

    one = class_embeddings(towers, tok, ["red star"], ["a picture of {}."])
    ids, mask = encode(tok, ["a picture of a red star."], towers.text_cfg.max_len)
    with torch.no_grad():
        assert torch.allclose(one, towers.encode_text(ids, mask), atol=1e-5)


def _crop(shape: str, colour: str | None) -> Crop:
    return Crop("x.jpg", "test", (0, 0, 8, 8), shape, colour)


def test_tasks_from_a_two_by_two_holdout():
    concepts = Concepts(SHAPES)
    pool = [_crop("star", "red"), _crop("circle", "blue"), _crop("star", "blue"),
            _crop("square", "red"), _crop("triangle", "blue"), _crop("star", None),
            _crop("square", "green")]
    tasks = {t.key: t for t in zero_shot_tasks(pool, ["red star", "blue circle", "blue star"],
                                               concepts)}
    held = tasks["zs_heldout"]
    assert held.classes == ["red star", "blue circle", "blue star"]
    assert held.index == [0, 1, 2] and held.labels == [0, 1, 2] and abs(held.chance - 1 / 3) < 1e-9
    control = tasks["zs_seen_compositions"]   # held-out colours x shapes training names
    assert control.classes == ["blue triangle", "blue square", "red circle", "red triangle",
                               "red square"]
    assert [pool[i].shape for i in control.index] == ["square", "triangle"]
    shapes = tasks["zs_seen_shapes"]
    assert shapes.classes == SHAPES and len(shapes.index) == len(pool)
    colours = tasks["zs_seen_colours"]
    assert len(colours.classes) == 12 and len(colours.index) == 6   # the crops with a colour
    assert colours.classes[colours.labels[0]] == "red"


def test_a_single_held_out_phrase_gets_distractors_of_its_kind():
    concepts = Concepts(SHAPES, colours=["red", "blue"])
    tasks = {t.key: t for t in zero_shot_tasks([_crop("star", "red")], ["red star"], concepts)}
    assert len(tasks["zs_heldout"].classes) == 8 and tasks["zs_heldout"].note
    tasks = {t.key: t for t in zero_shot_tasks([_crop("star", "red")], ["star"], concepts)}
    assert tasks["zs_heldout"].classes[0] == "star" and len(tasks["zs_heldout"].classes) == 4
    assert "zs_seen_shapes" not in tasks  # only star crops, and star is held out


def test_square_box_stays_inside_the_image():
    assert square_box([10, 10, 20, 10], 64, 64, 1.5) == (5, 0, 35, 30)
    assert square_box([50, 50, 14, 14], 64, 64, 2.0) == (36, 36, 64, 64)
    assert square_box([0, 0, 60, 60], 64, 64, 2.0) == (0, 0, 64, 64)


def test_a_diagonal_holdout_adds_the_generalised_task():
    concepts = Concepts(SHAPES)
    holdout = ["black circle", "yellow square", "gray triangle", "blue star"]
    pool = [_crop("circle", "black"), _crop("star", "blue"), _crop("circle", "yellow"),
            _crop("star", None)]
    tasks = {t.key: t for t in zero_shot_tasks(pool, holdout, concepts)}
    assert tasks["zs_heldout"].index == [0, 1]
    general = tasks["zs_heldout_generalised"]
    assert len(general.classes) == 16 and general.index == [0, 1]   # held-out crops only
    assert [general.classes[k] for k in general.labels] == ["black circle", "blue star"]
    assert "yellow circle" in tasks["zs_seen_compositions"].classes
    assert tasks["zs_seen_compositions"].index == [2]
