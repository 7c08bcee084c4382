"""``transfer``: backbone initialisations x fine-tuning schedule lengths (paper Table 1, Fig. 2).

The same detector is fine-tuned from each backbone initialisation (``random`` init, ImageNet-
style ``supervised``, ``mocov3``, ``mae``, ``beit``: the project's own pretraining stages,
``pretrained/<init>/backbone.safetensors``) for each schedule length in
``experiments.transfer.epochs`` and each model size in ``sizes``. Table 1's analogue is APbox /
APmask per initialisation and size at the longest schedule, with the data each backbone was
pretrained on; Figure 2's is test APbox against fine-tuning epochs, one line per init.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from components.experiments.registry import Column, Variant, VariantError, register_experiment

if TYPE_CHECKING:  # pragma: no cover
    from components.experiments.report import ReportContext

INITS = ["random", "supervised", "mocov3", "mae", "beit"]


def _out(params: Mapping[str, Any]) -> str:
    return str((params.get("pretrain") or {}).get("out") or "pretrained")


def _paths(params: Mapping[str, Any], init: str) -> tuple[Path, Path]:
    from components.train.config import resolve_path

    folder = resolve_path(_out(params)) / init
    return folder / "backbone.safetensors", folder / "meta.json"


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def check(variant: Variant, params: Mapping[str, Any]) -> None:
    """The backbone file must exist and, if its meta.json records a size, match model.size."""
    init = variant.labels["init"]
    ckpt, meta_path = _paths(params, init)
    fix = f"`dvc repro pretrain_{init}` (python -m components.pretrain --method {init})"
    if not ckpt.is_file():
        raise VariantError(f"init {init!r}: pretrained backbone {ckpt} not found; "
                           f"produce it with {fix}")
    recorded = _read_meta(meta_path).get("size")
    wanted = params["model"]["size"]
    if recorded is not None and recorded != wanted:
        raise VariantError(f"init {init!r}: {meta_path} records size {recorded!r} but this "
                           f"variant fine-tunes model.size={wanted!r}; re-run {fix} with "
                           f"model.size={wanted}, or drop {wanted!r} from "
                           "experiments.transfer.sizes")


def _data_kind(init: str) -> str | None:
    try:
        from components.pretrain import get_method

        return get_method(init).data
    except Exception:  # noqa: BLE001 (a method registered elsewhere; meta still says a lot)
        return None


def describe(variant: Variant, params: Mapping[str, Any]) -> dict:
    """What the backbone was pretrained on (recorded in result.json under ``inputs``)."""
    init = variant.labels["init"]
    _, meta_path = _paths(params, init)
    meta = _read_meta(meta_path)
    keep = ("method", "size", "img_size", "images", "data_root", "data_hash", "epochs", "steps",
            "final_loss")
    info = {k: meta.get(k) for k in keep}
    info["data_kind"] = _data_kind(init)
    split = (meta.get("options") or {}).get("split")
    info["split"] = split
    return {"pretrain": info}


def pretraining_data(info: Mapping[str, Any] | None) -> str:
    """One-line description of a backbone's pretraining data for Table 1."""
    if not info:
        return "—"
    kind, images = info.get("data_kind"), info.get("images")
    if kind == "none" or not images:
        return "none (random init)"
    what = {"unlabeled": "unlabeled images",
            "labels": f"images with image-level labels ({info.get('split') or 'train'} split)"
            }.get(kind or "", "images")
    root = Path(str(info.get("data_root") or "")).name or "?"
    return f"{images} {what} of `{root}`, {info.get('epochs')} ep"


def report(ctx: "ReportContext") -> str:
    """Table 1 (longest schedule) and Figure 2 (``figure2.png``)."""
    from components.experiments.plots import line_chart
    from components.experiments.report import fmt_stat, md_table

    cols = list(ctx.spec.columns)
    longest = max(s.variant.labels["epochs"] for s in ctx.summaries)
    rows = []
    for s in ctx.summaries:
        if s.variant.labels["epochs"] != longest:
            continue
        info = next((r.get("inputs", {}).get("pretrain") for (v, _), r in ctx.results.items()
                     if v == s.name and r.get("inputs")), None)
        data = pretraining_data(info) if info else (
            "— (" + next(iter(s.failed.values()))[:120] + ")" if s.failed else "—")
        rows.append([f"`{s.variant.labels['init']}`", str(s.variant.labels["size"]), data,
                     *(fmt_stat(s, c) if s.status == "ok" else s.status for c in cols),
                     f"{len(s.ok_seeds)}/{len(s.seeds)}"])
    table = md_table(["init", "size", "pretraining data", *(c.label for c in cols), "seeds ok"],
                      rows)
    sizes = sorted({s.variant.labels["size"] for s in ctx.summaries})
    series: dict[str, list[tuple[float, float, float]]] = {}
    for s in ctx.summaries:
        if s.status != "ok" or "bbox_mAP" not in s.stats:
            continue
        lab = s.variant.labels
        name = lab["init"] if len(sizes) == 1 else f"{lab['init']} ({lab['size']})"
        st = s.stats["bbox_mAP"]
        series.setdefault(name, []).append((lab["epochs"], st.mean, st.std))
    line_chart(series, ctx.out / "figure2.png", title="test APbox vs fine-tuning epochs "
               "(error bars: std over seeds)", xlabel="fine-tuning epochs", ylabel="APbox")
    return "\n".join([f"### Table 1 analogue: initialisation x size at {longest} fine-tuning "
                      "epochs", "", table, "",
                      "### Figure 2 analogue: APbox vs fine-tuning schedule", "",
                      "One line per initialisation, one point per schedule length (failed "
                      "variants are left out).", "", "![figure 2](figure2.png)", ""])


@register_experiment(
    "transfer", title="backbone initialisation x fine-tuning schedule", paper="Table 1 and Figure 2",
    description=__doc__.split("\n\n", 1)[1],
    defaults={"inits": list(INITS), "sizes": ["tiny"], "epochs": [2, 4]},
    columns=(Column("bbox_mAP", "APbox"), Column("segm_mAP", "APmask"),
             Column("bbox_mAP_50", "APbox50")),
    check=check, describe=describe, report=report)
def variants(section: dict, params: Mapping[str, Any]) -> list[Variant]:
    """``<init>-<size>-ep<epochs>`` for every init x size x schedule length."""
    inits, sizes = list(section["inits"]), list(section["sizes"])
    epochs = [int(e) for e in section["epochs"]]
    if not inits or not sizes or not epochs:
        raise ValueError("experiments.transfer needs non-empty inits, sizes and epochs")
    if any(e < 1 for e in epochs):
        raise ValueError(f"experiments.transfer.epochs must be >= 1, got {epochs}")
    out = []
    for size in sizes:
        for init in inits:
            for ep in epochs:
                ckpt = f"{_out(params)}/{init}/backbone.safetensors"
                out.append(Variant(f"{init}-{size}-ep{ep}",
                                   {"model.checkpoint": ckpt, "model.size": size,
                                    "finetune.epochs": ep},
                                   {"init": init, "size": size, "epochs": ep}))
    return out
