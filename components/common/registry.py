"""Registries by name: the one place that says "look it up, or explain what exists".

Every extension point of the project (backbones, pretraining methods, paper experiments,
validation suites, data importers) is a :class:`Registry`: a read-only mapping from a name to
a registered object, filled by ``@REG.register("name")`` (or ``REG.register("name", obj)``) in
the module that defines the object. What it guarantees, once, for all of them:

* ``REG.get(name)`` (or ``REG[name]``) raises a ``KeyError`` whose message names the kind of
  thing, the names that exist, and where a new one is added;
* registering a *different* object under a taken name is a ``ValueError`` naming both
  definitions (re-registering the same definition, e.g. on a module reload, replaces it);
  ``source`` says what "the same" means when the entry is a spec wrapping a function;
* iteration order is registration order, so listings are stable.

Pure Python, no project imports: every package may use it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable, Generic, TypeVar, overload

__all__ = ["Registry"]

T = TypeVar("T")


def _origin(obj: Any) -> str:
    target = obj if hasattr(obj, "__module__") and hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


class Registry(Mapping[str, T], Generic[T]):
    """A named, read-only mapping filled by registration (see the module docstring).

    Args:
        kind: what the entries are, for messages ("backbone", "pretraining method").
        where: where a new entry goes, for messages ("components/models/backbones/").
    """

    def __init__(self, kind: str, where: str) -> None:
        self.kind = kind
        self.where = where
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}

    # -- registration
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, source: Any = None) -> T: ...

    def register(self, name: str, obj: Any = None, *, source: Any = None) -> Any:
        """``@REG.register("name")`` decorator, or ``REG.register("name", obj)``.

        ``source``: the definition the entry comes from (default: the entry itself), e.g. the
        factory function a spec object wraps; two registrations clash when sources differ.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def add(value: T) -> T:
            origin = _origin(value if source is None else source)
            if name in self._sources and self._sources[name] != origin:
                raise ValueError(f"{self.kind} {name!r} is registered twice "
                                 f"({self._sources[name]} and {origin})")
            self._items[name] = value
            self._sources[name] = origin
            return value

        return add if obj is None else add(obj)

    # -- lookup
    def get(self, name: str, default: Any = ...) -> T:  # type: ignore[override]
        """The entry ``name``; a helpful ``KeyError`` if there is none (unless ``default``)."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            if default is not ...:
                return default
            raise KeyError(self.unknown(name)) from None

    def unknown(self, name: Any) -> str:
        """The message for a name that is not registered."""
        return (f"unknown {self.kind} {name!r}; known: {', '.join(self._items) or 'none'} "
                f"(add one in {self.where})")

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {list(self._items)})"
