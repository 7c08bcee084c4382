"""Per-variant statistics over seeds, from the jobs' ``result.json`` dicts.

Spread = the sample standard deviation over seeds (``ddof=1``; 0 with one seed); min and max
are kept too. A variant's numbers are only aggregated when every requested seed finished
``ok``: a variant with a failed (or missing) seed is reported as failed (missing) with no
mean, so a partial or broken run can never pass for a valid result.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from components.experiments.registry import Variant

__all__ = ["SPREAD", "Stat", "VariantSummary", "stat", "aggregate"]

SPREAD = "std"  # sample standard deviation over seeds (ddof=1)


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max, "n": self.n}


@dataclass
class VariantSummary:
    """One variant across its seeds. ``status``: ok | failed | missing."""

    variant: Variant
    seeds: list[int]
    status: str
    ok_seeds: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)   # seed -> error
    missing: list[int] = field(default_factory=list)
    stats: dict[str, Stat] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.variant.name

    def as_dict(self) -> dict[str, Any]:
        return {"variant": self.name, "overrides": self.variant.overrides,
                "labels": self.variant.labels, "status": self.status, "seeds": self.seeds,
                "ok_seeds": self.ok_seeds, "failed": {str(k): v for k, v in self.failed.items()},
                "missing_seeds": self.missing,
                "stats": {k: s.as_dict() for k, s in self.stats.items()}}


def stat(values: Iterable[float]) -> Stat:
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no values")
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return Stat(statistics.fmean(vals), std, min(vals), max(vals), len(vals))


def _numbers(summary: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def aggregate(variants: list[Variant], seeds: list[int],
              results: Mapping[tuple[str, int], Mapping[str, Any]]) -> list[VariantSummary]:
    """``results[(variant, seed)]`` -> one :class:`VariantSummary` per variant, in order."""
    out = []
    for v in variants:
        s = VariantSummary(v, list(seeds), "ok")
        per_seed: list[dict[str, float]] = []
        for seed in seeds:
            res = results.get((v.name, seed))
            if res is None:
                s.missing.append(seed)
            elif res.get("status") != "ok":
                s.failed[seed] = str(res.get("error") or "failed (no message)")
            else:
                s.ok_seeds.append(seed)
                per_seed.append(_numbers(res.get("summary") or {}))
        s.status = "failed" if s.failed else "missing" if s.missing else "ok"
        if s.status == "ok" and per_seed:
            # a key some seeds lack (objectaware fine-tunes at detection_seeds only) is
            # aggregated over the seeds that have it; its Stat.n says how many
            keys = set.union(*(set(p) for p in per_seed))
            s.stats = {k: stat(p[k] for p in per_seed if k in p) for k in sorted(keys)}
        out.append(s)
    return out
