"""What a curation run reports: ``counts.json``, ``metrics.json`` and a readable ``report.md``.

``counts.json`` is deterministic (same data and params -> same bytes); the wall time and
throughput go only to ``report.md`` and ``metrics.json``.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from components.common.dvc_metrics import COLUMNS, row
from components.curation.config import CurationConfig
from components.curation.filters import REASONS, Curator, SplitResult

__all__ = ["counts_json", "metrics_row", "markdown"]


def counts_json(results: list[SplitResult], curator: Curator) -> dict[str, Any]:
    """Per split: in / kept / removed by reason, kept pairs per class label, and how many
    pairs mention each held-out phrase (in the input and among the kept)."""
    splits: dict[str, Any] = {}
    for r in results:
        labels = Counter(label for _, ls in r.kept for label in ls)
        mentions_in: Counter[str] = Counter()
        mentions_kept: Counter[str] = Counter()
        if curator.holdout:
            for p, _ in r.kept:
                mentions_kept.update(curator.holdout.find(p.caption))
            mentions_in.update(mentions_kept)
            for x in r.removed:
                mentions_in.update(curator.holdout.find(x.pair.caption))
        splits[r.split] = {
            **r.counts(),
            "labels": {n: labels.get(n, 0) for n in curator.labels.names},
            "holdout_mentions": {h: {"in": mentions_in.get(h, 0), "kept": mentions_kept.get(h, 0)}
                                 for h in curator.holdout.names},
        }
    total_removed = {k: sum(s["removed"][k] for s in splits.values()) for k in REASONS}
    return {"splits": splits,
            "total": {"in": sum(s["in"] for s in splits.values()),
                      "kept": sum(s["kept"] for s in splits.values()),
                      "removed": total_removed}}


def metrics_row(counts: Mapping[str, Any], images_per_s: float) -> dict[str, float]:
    """The ``dvc metrics show`` row: no suite failures (a failing suite writes nothing) and
    the images curated per second; ``kept``/``removed`` too once the shared vocabulary
    (:data:`components.common.dvc_metrics.COLUMNS`) has those columns."""
    total = counts["total"]
    extra = {k: v for k, v in (("kept", total["kept"]),
                               ("removed", sum(total["removed"].values()))) if k in COLUMNS}
    return row(failures=0, img_per_s=images_per_s, **extra)


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.replace("|", "\\|").replace("`", "'")


def markdown(results: list[SplitResult], manifest: Mapping[str, Any],
             counts: Mapping[str, Any], cfg: CurationConfig, wall_s: float) -> str:
    splits = [r.split for r in results]
    per = counts["splits"]
    total = counts["total"]
    src = manifest["source"]
    head = " | ".join(splits)
    sep = "|".join(["---"] * (len(splits) + 2))
    kept_pct = 100 * total["kept"] / total["in"] if total["in"] else 0.0
    lines = [
        "# Curation report",
        "",
        f"Dataset `{src['dataset']}` (content hash `{str(src['content_hash'])[:12]}`, DVC "
        f"`{src['dvc_hash']}`) -> `{cfg.out}`: {total['in']} pairs in, {total['kept']} kept "
        f"({kept_pct:.1f}%), {wall_s:.1f} s.",
        "",
        f"Vocabulary ({len(manifest['vocabulary'])} classes, from "
        f"{manifest['vocabulary_source']}): {', '.join(manifest['vocabulary']) or 'none'}.",
        f"Held out of the train captions: {', '.join(manifest['holdout']) or 'nothing'}.",
        "",
        "## Pairs removed, by reason (first rule that fired)",
        "",
        f"| reason | {head} | total |",
        f"|{sep}|",
        f"| **in** | {' | '.join(str(per[s]['in']) for s in splits)} | {total['in']} |",
    ]
    for reason in REASONS:
        lines.append(f"| {reason} | {' | '.join(str(per[s]['removed'][reason]) for s in splits)}"
                     f" | {total['removed'][reason]} |")
    lines.append(f"| **kept** | {' | '.join(str(per[s]['kept']) for s in splits)} | "
                 f"{total['kept']} |")
    if manifest["vocabulary"]:
        lines += ["", "## Kept pairs per class label", "", f"| class | {head} |",
                  f"|{'|'.join(['---'] * (len(splits) + 1))}|"]
        for name in manifest["vocabulary"]:
            lines.append(f"| {name} | {' | '.join(str(per[s]['labels'][name]) for s in splits)} |")
    if manifest["holdout"]:
        lines += ["", "## Held-out phrases: pairs mentioning them (in -> kept)", "",
                  f"| phrase | {head} |", f"|{'|'.join(['---'] * (len(splits) + 1))}|"]
        for h in manifest["holdout"]:
            cells = [f"{per[s]['holdout_mentions'][h]['in']} -> "
                     f"{per[s]['holdout_mentions'][h]['kept']}" for s in splits]
            lines.append(f"| {h} | {' | '.join(cells)} |")
    lines += ["", f"## Examples of removed captions (up to {cfg.examples} per reason and split)",
              ""]
    any_example = False
    for r in results:
        by_reason: dict[str, list] = {}
        for x in r.removed:
            by_reason.setdefault(x.reason, []).append(x)
        for reason in REASONS:
            shown = by_reason.get(reason, [])[: cfg.examples]
            if not shown:
                continue
            any_example = True
            lines.append(f"**{r.split} / {reason}** ({len(by_reason[reason])})")
            lines.append("")
            for x in shown:
                detail = f" ({_cell(x.detail)})" if x.detail else ""
                lines.append(f"- line {x.pair.line}, `{_cell(x.pair.image, 80)}`: "
                             f"\"{_cell(x.pair.caption)}\"{detail}")
            lines.append("")
    if not any_example:
        lines.append("Nothing was removed.")
    return "\n".join(lines).rstrip() + "\n"
