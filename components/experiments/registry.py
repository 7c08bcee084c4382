"""The registry of paper experiments: adding one is one module + one registration.

An experiment module registers a *variant factory* that turns its ``experiments.<name>`` params
section into the list of variants to compare::

    @register_experiment("fpn", title="...", paper="Table 2", defaults={"variants": [...]},
                         columns=(Column("bbox_mAP", "APbox"), ...))
    def variants(section: dict, params: Mapping) -> list[Variant]: ...

The contract a registered experiment satisfies (the runner and the report rely on nothing else):

* ``variants(section, params)``: ``section`` is ``defaults`` updated with
  ``params["experiments"][name]``; ``params`` is the full base params dict (read-only). Each
  :class:`Variant` has a unique ``name`` (used in folders: letters, digits, ``._-``), dotted
  ``overrides`` of params.yaml keys, and optional ``labels`` (values the report groups by, e.g.
  transfer's ``init``/``epochs``). Raise ``ValueError`` for a bad section (a usage error).
* optional ``check(variant, params)``: raise :class:`VariantError` when a variant cannot run
  (missing input files...). Called before the variant's process starts and again inside it;
  the message is what the report shows, so name the command that fixes it.
* optional ``describe(variant, params) -> dict``: extra facts recorded in the variant's
  ``result.json`` under ``"inputs"`` (transfer: what the backbone was pretrained on).
* optional ``report(ctx) -> str``: extra Markdown for ``report.md``; may write PNGs into
  ``ctx.out`` (see :class:`components.experiments.report.ReportContext`).
* optional ``job_overrides(variant, params, folder) -> dict``: dotted overrides that depend on
  the job's folder (applied last when the job is planned, so resume keys see them; e.g. where
  the job's own pretraining writes its backbone and ``model.checkpoint`` pointing at it).
* optional ``prepare(variant, params, folder) -> dict``: runs in the job's process before
  fine-tuning (the object-aware experiment pretrains and linear-probes here). Returns
  ``summary`` (extra numbers for the report), ``inputs`` (recorded in result.json) and
  ``detection`` (False: skip fine-tuning and evaluation, the job is the prepare step alone).
* ``columns``: the summary keys of the main table (mean +- spread per variant);
  ``charts``: bar charts (``ap.png`` with APbox/APmask is always drawn).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from components.common.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from components.experiments.report import ReportContext

__all__ = ["Variant", "Column", "BarChart", "ExperimentSpec", "VariantError", "EXPERIMENTS",
           "PAPER", "register_experiment", "get_experiment", "pick_variants"]

PAPER = ('Li, Xie, Lin, Cubuk, He, Girshick: "Benchmarking Detection Transfer Learning with '
         'Vision Transformers", arXiv 2111.11429')
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class VariantError(RuntimeError):
    """A variant cannot run (e.g. a pretrained backbone it needs does not exist)."""


@dataclass(frozen=True)
class Variant:
    """One configuration under comparison (repeated over seeds by the runner)."""

    name: str
    overrides: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """A column of the report's main table: ``key`` of a result's ``summary``."""

    key: str
    label: str
    fmt: str = ".4f"


@dataclass(frozen=True)
class BarChart:
    """A bar chart (one bar group per variant, one bar per key, error bars = spread)."""

    file: str
    title: str
    keys: tuple[str, ...]
    ylabel: str


AP_CHART = BarChart("ap.png", "test AP per variant", ("bbox_mAP", "segm_mAP"), "AP")


@dataclass(frozen=True)
class ExperimentSpec:
    """A registered experiment (see the module docstring for the contract)."""

    name: str
    variants: Callable[[dict, Mapping[str, Any]], list[Variant]]
    title: str
    paper: str
    description: str
    columns: tuple[Column, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    charts: tuple[BarChart, ...] = (AP_CHART,)
    check: Callable[[Variant, Mapping[str, Any]], None] | None = None
    describe: Callable[[Variant, Mapping[str, Any]], dict] | None = None
    report: Callable[["ReportContext"], str] | None = None
    source: str = PAPER  # the paper whose table/figure ``paper`` names
    job_overrides: Callable[[Variant, Mapping[str, Any], Any], dict] | None = None
    prepare: Callable[[Variant, Mapping[str, Any], Any], dict] | None = None


EXPERIMENTS: Registry[ExperimentSpec] = Registry(
    "experiment", "components/experiments/<name>.py + register_experiment")


def register_experiment(name: str, *, title: str, paper: str, columns: tuple[Column, ...],
                        description: str = "", defaults: Mapping[str, Any] | None = None,
                        charts: tuple[BarChart, ...] = (),
                        check: Callable[[Variant, Mapping[str, Any]], None] | None = None,
                        describe: Callable[[Variant, Mapping[str, Any]], dict] | None = None,
                        report: Callable[["ReportContext"], str] | None = None,
                        source: str = PAPER,
                        job_overrides: Callable[[Variant, Mapping[str, Any], Any], dict] | None = None,
                        prepare: Callable[[Variant, Mapping[str, Any], Any], dict] | None = None,
                        ) -> Callable[[Callable], Callable]:
    """Decorator registering a variant factory ``variants(section, params)`` under ``name``.

    ``charts`` are drawn in addition to the APbox/APmask chart every experiment gets;
    ``source`` cites the paper (default: the ViT detection-transfer paper, :data:`PAPER`).
    """
    if not _NAME.match(name):
        raise ValueError(f"experiment name {name!r}: use letters, digits and ._-")

    def wrap(factory: Callable) -> Callable:
        doc = (factory.__doc__ or "").strip()
        EXPERIMENTS.register(name, ExperimentSpec(
            name, factory, title, paper, description or doc, tuple(columns),
            dict(defaults or {}), (AP_CHART, *charts), check, describe, report, source,
            job_overrides, prepare),
            source=factory)
        return factory

    return wrap


def get_experiment(name: str) -> ExperimentSpec:
    """Look an experiment up by name (importing :mod:`components.experiments` registers the
    built-ins)."""
    return EXPERIMENTS.get(name)


def check_variant_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"variant name {name!r}: use letters, digits and ._- (it names a folder)")
    return name


def pick_variants(experiment: str, names: list[str], table: Mapping[str, Any],
                  make: Callable[[str, Any], Variant]) -> list[Variant]:
    """``make(name, table[name])`` for each name of ``experiments.<experiment>.variants``; an
    unknown name is a ValueError listing the known ones (the runner turns it into exit 2)."""
    out = []
    for name in names:
        if name not in table:
            raise ValueError(f"experiments.{experiment}.variants: unknown {name!r}; "
                             f"known: {list(table)}")
        out.append(make(name, table[name]))
    return out
