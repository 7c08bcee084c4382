"""From params to the list of jobs (variant x seed), each with its fully resolved params.

The ``experiments`` block of params.yaml (read with defaults, so nothing breaks before it
exists)::

    experiments:
      out: reports                 # reports/<name>/
      work_dir: runs/experiments   # runs/experiments/<name>/<variant>-s<seed>/
      seeds: [0, 1]
      recipe: {}                   # dotted overrides for every variant of every experiment
      <name>: {...}                # the experiment's own section (its registered defaults;
                                   # optional ``recipe`` / ``seeds`` there apply to that experiment only)

Override order for one job (later wins): params.yaml (+ CLI ``--set``) -> ``experiments.recipe``
-> ``experiments.<name>.recipe`` (one experiment's own, e.g. the image size at which windows are
smaller than the token grid) -> the variant's overrides -> ``seed`` -> ``finetune.work_dir`` / ``evaluate.out`` (the job's
folder). So a ``--set`` on a key the recipe also sets is overridden by the recipe: change the
recipe itself (``--set 'experiments.recipe={finetune.epochs: 1}'``).

A job is skipped on rerun when its ``result.json`` is ``ok`` and its :func:`resume_key` still
matches: the fine-tuning config hash (resolved mmengine config + dataset content hash, as
``components.train.finetune.config_hash``) plus what that hash does not cover but the result
depends on: the backbone checkpoint's bytes, the evaluation split and the number of images
timed for inference.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from components.common.params import apply_overrides
from components.experiments.registry import ExperimentSpec, Variant, check_variant_name, get_experiment

__all__ = ["DEFAULTS", "UsageError", "Job", "settings", "section", "select_variants",
           "variant_params", "job_dir", "plan", "resume_key", "file_sha256", "checkpoint_sha256",
           "expected_config_hash"]

DEFAULTS: dict[str, Any] = {"out": "reports", "work_dir": "runs/experiments", "seeds": [0, 1],
                            "recipe": {}}


class UsageError(ValueError):
    """Bad command-line input (unknown experiment / variant, bad section): exit status 2."""


@dataclass(frozen=True)
class Job:
    """One variant at one seed: its resolved params and its folder."""

    experiment: str
    variant: Variant
    seed: int
    params: dict
    dir: Path

    @property
    def key(self) -> str:
        return f"{self.variant.name}-s{self.seed}"


def settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``experiments`` block with defaults filled in."""
    out = dict(DEFAULTS)
    out.update(dict(params.get("experiments") or {}))
    out["recipe"] = dict(out.get("recipe") or {})
    return out


def section(spec: ExperimentSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """``experiments.<name>`` over the experiment's registered defaults."""
    return {**spec.defaults, **dict(settings(params).get(spec.name) or {})}


def select_variants(spec: ExperimentSpec, params: Mapping[str, Any],
                    names: list[str] | None = None) -> list[Variant]:
    """The experiment's variants, optionally only those matching ``names`` (exact names or
    shell patterns such as ``mae-*``); an unmatched name is a :class:`UsageError`."""
    try:
        variants = spec.variants(section(spec, params), params)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"experiment {spec.name!r}: {exc.args[0] if exc.args else exc}") from None
    seen: set[str] = set()
    for v in variants:
        check_variant_name(v.name)
        if v.name in seen:
            raise UsageError(f"experiment {spec.name!r}: variant {v.name!r} listed twice")
        seen.add(v.name)
    if not names:
        return variants
    known = [v.name for v in variants]
    for pattern in names:
        if not fnmatch.filter(known, pattern):
            raise UsageError(f"experiment {spec.name!r} has no variant {pattern!r}; "
                             f"known: {known}")
    return [v for v in variants if any(fnmatch.fnmatchcase(v.name, p) for p in names)]


def job_dir(params: Mapping[str, Any], experiment: str, variant: str, seed: int) -> Path:
    from components.train.config import resolve_path

    return resolve_path(settings(params)["work_dir"]) / experiment / f"{variant}-s{seed}"


def variant_params(params: Mapping[str, Any], variant: Variant, seed: int,
                   folder: str | Path, *, experiment: str | None = None) -> dict:
    """The job's params (see the module docstring for the order)."""
    sets = settings(params)
    try:
        out = apply_overrides(dict(params), sets["recipe"])
    except KeyError as exc:
        raise UsageError(f"experiments.recipe: {exc.args[0]}") from None
    own = dict((sets.get(experiment) or {}).get("recipe") or {}) if experiment else {}
    try:
        out = apply_overrides(out, own)
    except KeyError as exc:
        raise UsageError(f"experiments.{experiment}.recipe: {exc.args[0]}") from None
    try:
        out = apply_overrides(out, variant.overrides)
    except KeyError as exc:
        raise UsageError(f"variant {variant.name!r}: {exc.args[0]}") from None
    out = apply_overrides(out, {"seed": int(seed)})
    folder = Path(folder)
    out = apply_overrides(out, {"finetune.work_dir": str(folder),
                                "evaluate.out": str(folder / "evaluate")})
    spec = get_experiment(experiment) if experiment else None
    if spec is not None and spec.job_overrides is not None:
        try:
            out = apply_overrides(out, spec.job_overrides(variant, out, folder))
        except KeyError as exc:
            raise UsageError(f"experiment {experiment!r}: {exc.args[0]}") from None
    return out


def plan(spec: ExperimentSpec, params: Mapping[str, Any], *, seeds: list[int] | None = None,
         names: list[str] | None = None) -> list[Job]:
    """Every job of one invocation, seed-major (all variants at the first seed first, so a
    complete first comparison exists as early as possible)."""
    seeds = [int(s) for s in (seeds or section(spec, params).get("seeds")
                              or settings(params)["seeds"])]
    if not seeds:
        raise UsageError("no seeds: set experiments.seeds or pass --seeds")
    variants = select_variants(spec, params, names)
    jobs = []
    for seed in seeds:
        for v in variants:
            folder = job_dir(params, spec.name, v.name, seed)
            jobs.append(Job(spec.name, v, seed,
                            variant_params(params, v, seed, folder, experiment=spec.name), folder))
    return jobs


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def checkpoint_sha256(params: Mapping[str, Any]) -> str | None:
    """sha256 of ``model.checkpoint`` (None: random init or the file does not exist)."""
    from components.train.config import resolve_path

    ckpt = (params.get("model") or {}).get("checkpoint")
    if not ckpt:
        return None
    path = resolve_path(ckpt)
    return file_sha256(path) if path.is_file() else None


def resume_key(config_hash: str, params: Mapping[str, Any], inference_images: int,
               labels: Mapping[str, Any] | None = None) -> str:
    """What must be unchanged for a finished job to be reused (see the module docstring); the
    variant's ``labels`` count too (e.g. objectaware's ``detection``: probe-only or fine-tuned)."""
    body = {"config_hash": config_hash, "checkpoint": checkpoint_sha256(params),
            "evaluate.split": params["evaluate"]["split"], "inference_images": int(inference_images)}
    if labels:
        body["labels"] = dict(labels)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def expected_config_hash(params: Mapping[str, Any], folder: str | Path) -> str:
    """The fine-tuning stage's config hash for these params, without training (builds the
    mmengine config: ~4 s of imports the first time)."""
    from components.data.manifest import read_manifest
    from components.train.config import build_config, resolve_path
    from components.train.finetune import config_hash

    cfg = build_config(params, work_dir=folder)
    return config_hash(cfg, read_manifest(resolve_path(params["data"]["out"]))["content_hash"])
