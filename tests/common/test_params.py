import pytest

from components.common.params import DEFAULT_PARAMS, apply_overrides, flatten, load_params, parse_override


def test_project_params_load_and_flatten_to_dotted_names():
    params = load_params(DEFAULT_PARAMS)
    flat = flatten(params)
    assert flat["finetune.epochs"] == params["finetune"]["epochs"]
    assert flat["data.synthetic.image_size"] == params["data"]["synthetic"]["image_size"]
    assert all(not isinstance(v, dict) for v in flat.values())


def test_overrides_apply_without_touching_the_original():
    params = {"a": {"b": 1, "c": {"d": 2}}}
    out = apply_overrides(params, {"a.b": 5, "a.c.d": [1, 2]})
    assert out == {"a": {"b": 5, "c": {"d": [1, 2]}}}
    assert params["a"]["b"] == 1


@pytest.mark.parametrize("key", ["a.x", "a.b.c", "z.b"])
def test_unknown_override_keys_are_rejected(key):
    with pytest.raises(KeyError):
        apply_overrides({"a": {"b": 1}}, {key: 1})


def test_parse_override_reads_yaml_values():
    assert parse_override("finetune.epochs=12") == ("finetune.epochs", 12)
    assert parse_override("finetune.lsj_scale=[0.5, 1.5]") == ("finetune.lsj_scale", [0.5, 1.5])
    with pytest.raises(ValueError):
        parse_override("finetune.epochs")
