"""The one registry helper every extension point uses."""
from __future__ import annotations

import re

import pytest

from components.common.registry import Registry


def _factory():
    return 1


def _other():
    return 2


def test_lookup_lists_known_names_and_where_to_add():
    reg: Registry = Registry("widget", "components/widgets/")
    reg.register("a", 1)
    reg.register("b")(_factory)
    assert reg["a"] == 1 and reg.get("b") is _factory and list(reg) == ["a", "b"]
    assert "a" in reg and len(reg) == 2 and dict(reg.items()) == {"a": 1, "b": _factory}
    with pytest.raises(KeyError, match=r"unknown widget 'c'; known: a, b \(add one in "
                                        r"components/widgets/\)"):
        reg["c"]
    assert reg.get("c", None) is None


def test_a_second_definition_under_a_taken_name_is_refused():
    reg: Registry = Registry("widget", "here")
    reg.register("x", _factory)
    reg.register("x", _factory)  # the same definition again (module reload): fine
    with pytest.raises(ValueError, match="'x' is registered twice"):
        reg.register("x", _other)
    # a spec object wrapping a function clashes by the function it wraps
    reg.register("y", {"spec": 1}, source=_factory)
    reg.register("y", {"spec": 2}, source=_factory)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("y", {"spec": 3}, source=_other)
    with pytest.raises(ValueError, match="non-empty string"):
        reg.register("", 1)


def test_every_project_registry_is_one_of_these():
    from components.data.importers import IMPORTERS
    from components.experiments import EXPERIMENTS
    from components.models.backbones import BACKBONES
    from components.pretrain import METHODS
    from components.validation.suites import REGISTRY

    for reg in (IMPORTERS, EXPERIMENTS, BACKBONES, METHODS, REGISTRY):
        assert isinstance(reg, Registry) and len(reg) > 0
        with pytest.raises(KeyError, match=re.escape(f"unknown {reg.kind}")):
            reg.get("no-such-entry")
