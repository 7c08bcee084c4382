"""Loading ``params.yaml`` with dotted overrides, and flattening for MLflow.

Why one module: DVC, Prefect and MLflow must all see the same parameter names. Dotted
names (``finetune.epochs``) are the lingua franca: DVC's ``-S``, the flow's overrides and
MLflow's params all use them.
"""
from __future__ import annotations

import argparse

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml

from components.common.env import PROJECT_ROOT

DEFAULT_PARAMS = PROJECT_ROOT / "params.yaml"


def load_params(path: str | Path = DEFAULT_PARAMS, overrides: Mapping[str, Any] | None = None) -> dict:
    """Read a params file and apply ``{"a.b": value}`` overrides (keys must already exist)."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise SystemExit(f"params file not found: {path} (pass --params PATH)") from None
    return apply_overrides(params, overrides or {})


def apply_overrides(params: dict, overrides: Mapping[str, Any]) -> dict:
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise KeyError(f"override {dotted!r}: {key!r} is not a section of params.yaml")
            node = node[key]
        if leaf not in node:
            raise KeyError(f"override {dotted!r}: unknown key (typo?); known: {sorted(node)}")
        node[leaf] = value
    return out


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def parse_override(text: str) -> tuple[str, Any]:
    """``"finetune.epochs=12"`` -> ``("finetune.epochs", 12)`` (value parsed as YAML)."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def add_params_arguments(parser: "argparse.ArgumentParser", *, example: str = "finetune.epochs=2",
                         params_help: str = "params file (default: %(default)s)") -> None:
    """The two arguments every stage CLI takes: ``--params PATH`` and repeatable ``-s/--set
    KEY=VALUE`` (into ``args.overrides``); read them with :func:`load_params_or_exit`."""
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help=params_help)
    parser.add_argument("-s", "--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help=f"override a params value by dotted name, e.g. --set {example} "
                             "(repeatable; the value is parsed as YAML)")


def stage_parser(prog: str, description: str, *, example: str = "finetune.epochs=2"
                 ) -> "argparse.ArgumentParser":
    """The parser of a stage CLI: ``prog``, ``description`` and :func:`add_params_arguments`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_params_arguments(parser, example=example)
    return parser


def load_params_or_exit(path: str | Path, sets: list[str] | tuple[str, ...] = ()) -> dict:
    """CLI helper: ``--params PATH`` plus ``--set key=value`` strings -> params; a bad override
    prints ``error: ...`` to stderr and exits with status 2 (a usage error)."""
    import sys

    try:
        return load_params(path, dict(parse_override(s) for s in sets))
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def with_section_defaults(params: Mapping[str, Any], section: str, defaults: Mapping[str, Any],
                          *, strict: bool = True, where: str = "") -> dict:
    """A deep copy of ``params`` whose ``section`` has every key of ``defaults`` (the stage runs
    before params.yaml has the block, and ``--set section.key=v`` works on it). ``strict``: an
    unknown key in the section is a KeyError naming it and the known ones (and ``where`` the
    defaults live)."""
    out = copy.deepcopy(dict(params))
    given = dict(out.get(section) or {})
    unknown = sorted(set(given) - set(defaults))
    if strict and unknown:
        hint = f" ({where})" if where else ""
        raise KeyError(f"params.yaml {section}: unknown keys {unknown} (typo?); known: "
                       f"{sorted(defaults)}{hint}")
    out[section] = {**copy.deepcopy(dict(defaults)), **given}
    return out


def params_from_args(parser: "argparse.ArgumentParser", args: "argparse.Namespace",
                     complete=lambda p: p) -> dict:
    """``--params`` + ``--set`` of a stage CLI (:func:`add_params_arguments`): ``complete``
    fills section defaults before the overrides apply; a bad key or value is a usage error
    (``parser.error``, exit status 2)."""
    try:
        params = complete(load_params(args.params))
        return apply_overrides(params, dict(parse_override(s) for s in args.overrides))
    except (KeyError, ValueError) as exc:
        parser.error(str(exc.args[0] if exc.args else exc))
