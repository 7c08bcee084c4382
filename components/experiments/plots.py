"""PNG charts of an experiment report (matplotlib, Agg backend: no display needed).

Only variants whose status is ``ok`` are drawn; error bars are the spread of
:mod:`components.experiments.aggregate` (std over seeds).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from components.experiments.aggregate import VariantSummary
from components.experiments.registry import BarChart

__all__ = ["bar_chart", "line_chart"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def bar_chart(summaries: Sequence[VariantSummary], chart: BarChart, path: Path,
              labels: dict[str, str] | None = None) -> Path:
    """Grouped bars: one group per ok variant, one bar per ``chart.keys`` entry (mean +- std).
    Keys of different units each get their own panel."""
    plt = _pyplot()
    labels = labels or {}
    ok = [s for s in summaries if s.status == "ok"]
    keys = [k for k in chart.keys if any(k in s.stats for s in ok)]
    same_unit = chart.keys == ("bbox_mAP", "segm_mAP") or len(keys) <= 1
    panels = [keys] if same_unit else [[k] for k in keys]
    width = max(5.0, 0.6 * len(ok) * (len(keys) if same_unit else 1) + 2)
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(width * max(1, len(panels)), 3.8),
                             dpi=100, squeeze=False)
    for ax, panel in zip(axes[0], panels or [[]]):
        if not ok or not panel:
            _empty(ax, "no finished variants")
            continue
        step = 0.8 / len(panel)
        for j, key in enumerate(panel):
            xs = [i + (j - (len(panel) - 1) / 2) * step for i in range(len(ok))]
            means = [s.stats[key].mean if key in s.stats else 0.0 for s in ok]
            errs = [s.stats[key].std if key in s.stats else 0.0 for s in ok]
            ax.bar(xs, means, width=step * 0.9, yerr=errs, capsize=3,
                   label=labels.get(key, key))
        ax.set_xticks(range(len(ok)))
        ax.set_xticklabels([s.name for s in ok], rotation=30 if len(ok) > 4 else 0, ha="right"
                           if len(ok) > 4 else "center", fontsize=8)
        ax.set_ylabel(chart.ylabel if same_unit else labels.get(panel[0], panel[0]))
        if len(panel) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(chart.title + " (mean, error bars: std over seeds)", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.25 if len(ok) > 4 else 0.12, top=0.85,
                        wspace=0.35)
    fig.savefig(path)
    plt.close(fig)
    return path


def line_chart(series: dict[str, list[tuple[float, float, float]]], path: Path, *, title: str,
               xlabel: str, ylabel: str) -> Path:
    """One line per series of ``(x, mean, std)`` points, error bars = std."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    drawn, xticks = 0, set()
    for name, points in series.items():
        points = sorted(points)
        if not points:
            continue
        xs, ys, es = zip(*points)
        xticks.update(xs)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name)
        drawn += 1
    if drawn:
        ax.set_xticks(sorted(xticks))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    else:
        _empty(ax, "no finished variants")
    ax.set_title(title, fontsize=10)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=0.9)
    fig.savefig(path)
    plt.close(fig)
    return path
