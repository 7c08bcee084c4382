"""Transfer evaluation of the UniCL towers: zero-shot, linear probe and few-shot (Florence Table 1).

Protocols, all top-1 accuracy on ground-truth object crops (:mod:`components.imagetext.crops`):

* **zero-shot, held-out** (``zs_heldout``): the classes are the curation hold-out phrases
  (``manifest.json`` ``holdout``), e.g. colour-shape compositions such as "red star" that no
  training caption names although their words occur ("red square", "green star"). Crops:
  the objects of exactly one held-out class in the ``zero_shot_sources`` (unseen images);
  with fewer than two held-out phrases, every phrase of the same kind (all compositions, or
  all shapes) joins as a distractor (generalised zero-shot);
* **zero-shot, held-out, generalised** (``zs_heldout_generalised``): when the held-out
  compositions do not cover every pairing of their colours and shapes (a "diagonal" hold-out
  such as black circle / yellow square / gray triangle / blue star, where colour alone, or
  shape alone, separates the four), the held-out crops are classified among ALL those pairings
  (16 there, 12 of them seen in training): right only if both colour and shape are;
* **zero-shot, seen compositions** (``zs_seen_compositions``, the control): the compositions
  of the held-out colours with every class that training captions DO name ("red square",
  "blue triangle", ...), on the same images;
* **zero-shot, seen shapes / colours** (``zs_seen_shapes``, ``zs_seen_colours``): the class
  names themselves, and the colour words (crops whose colour the caption states): which of the
  two attributes the towers learned;
* **linear probe** (``linear_probe``): logistic regression
  (:func:`components.probe.fit_linear_probe`) on the frozen backbone's pooled features of
  ``probe_train_split`` crops (up to ``probe_max_train``), tested on ``probe_test_split``
  crops, classes = the built-in labels (shapes);
* **k-shot** (``shot_<k>``): the same probe fitted on k random train crops per class, mean
  (and spread) over ``few_shot_repeats`` draws.

Every protocol runs on the pretrained towers and on **random-init towers** (same seed and
construction, no training; the same tokenizer), so "above chance" is judged against both
chance (1 / #classes) and an untrained tower.

Outputs (``imagetext.out``, written atomically): ``report.md`` (the table), ``results.json``
(everything, with per-class accuracy and confusion matrices), ``metrics.json`` (DVC columns)
and ``accuracy.png`` (accuracy vs chance per protocol).
"""
from __future__ import annotations

import json
import math
import random
import statistics
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from components.common.env import PROJECT_ROOT, project_relative
from components.imagetext.crops import TRAIN_REMOVED, Crop, load_crops, split_crops
from components.imagetext.data import Concepts, curated_dir, read_manifest, read_pairs
from components.imagetext.zeroshot import DEFAULT_TEMPLATES, class_embeddings, zero_shot_scores

__all__ = ["IMAGETEXT_DEFAULTS", "COLUMNS", "Task", "with_defaults", "zero_shot_tasks",
           "evaluate", "write_outputs"]

IMAGETEXT_DEFAULTS: dict[str, Any] = {
    "checkpoint_dir": "pretrained/unicl",   # a pretrain_unicl output folder
    "out": "results/imagetext",
    "zero_shot_sources": ["test", "val", TRAIN_REMOVED],  # images pretraining never saw
    "templates": list(DEFAULT_TEMPLATES),
    "crop_context": 1.5,                    # crop side / longer box side
    "min_crop": 8,                          # px: smaller boxes are skipped
    "probe_train_split": "train",
    "probe_test_split": "test",
    "probe_max_train": 1000,                # crops (random subset, seeded)
    "probe_weight_decay": 1.0e-3,
    "shots": [1, 5, 10],
    "few_shot_repeats": 5,
    "baseline": True,                       # also evaluate random-init towers
    "batch_size": 64,
    "device": "cpu",
    "threads": 0,                           # torch CPU threads; 0 = torch default
    "stages": [],                           # the Prefect flow's optional imagetext_* stages, e.g. [evaluate]
}

# column key -> header; the order of the table
COLUMNS = {"zs_heldout": "zero-shot held-out",
           "zs_heldout_generalised": "zero-shot held-out, generalised",
           "zs_seen_compositions": "zero-shot seen compositions",
           "zs_seen_shapes": "zero-shot seen shapes", "zs_seen_colours": "zero-shot seen colours",
           "linear_probe": "linear probe"}
TOWER_TITLES = {"chance": "chance", "random": "random-init towers", "unicl": "UniCL"}


def with_defaults(params: Mapping[str, Any]) -> dict:
    """A deep copy of ``params`` whose ``imagetext`` section has every default key (so
    ``--set imagetext.shots=[1]`` works on a params.yaml without the section)."""
    from components.common.params import with_section_defaults

    return with_section_defaults(params, "imagetext", IMAGETEXT_DEFAULTS,
                                 where="components/imagetext/evaluate.py")


def _path(value: str | Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


@dataclass
class Task:
    """A zero-shot evaluation: ``classes`` (phrases) and the pool crops ``index`` with ``labels``."""

    key: str
    classes: list[str]
    index: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    note: str = ""

    @property
    def chance(self) -> float:
        return 1.0 / len(self.classes) if self.classes else math.nan


def zero_shot_tasks(pool: Sequence[Crop], holdout: Sequence[str], concepts: Concepts) -> list[Task]:
    """The three zero-shot tasks on ``pool`` (see the module docstring); a task with fewer
    than two classes or no crop is left out."""
    parsed = {h: concepts.parse(h) for h in holdout}
    held = [h for h in holdout if parsed[h] != (None, None)]
    note = ""
    if len(held) == 1:
        colour, shape = parsed[held[0]]
        kind = (concepts.compositions if colour and shape else
                concepts.vocabulary if shape else concepts.colours)
        extra = [k for k in kind if k.lower() != held[0].lower()]
        note = f"one held-out phrase: classified among all {len(kind)} phrases of its kind"
        held = held + extra
        parsed.update({k: concepts.parse(k) for k in extra})

    def matches(crop: Crop, phrase: str) -> bool:
        colour, shape = parsed[phrase] if phrase in parsed else concepts.parse(phrase)
        return ((colour is None or crop.colour == colour) and (shape is None or crop.shape == shape))

    tasks = [Task("zs_heldout", held, note=note)]
    held_lower = {h.lower() for h in holdout}
    held_colours = sorted({c for c, s in (parsed[h] for h in holdout) if c and s})
    held_comp_shapes = [v for v in concepts.vocabulary
                        if any(s == v and c for c, s in (parsed[h] for h in holdout))]
    mixed = [f"{c} {s}" for c in held_colours for s in held_comp_shapes]
    if len(mixed) > len(held):  # e.g. a diagonal hold-out: colour alone would solve zs_heldout
        parsed.update({k: concepts.parse(k) for k in mixed})
        tasks.append(Task("zs_heldout_generalised", mixed,
                          note="held-out crops among every composition of the held-out colours "
                               "and shapes (seen ones included)"))
    control = [f"{c} {s}" for c in held_colours for s in concepts.vocabulary
               if f"{c} {s}".lower() not in held_lower]
    parsed.update({k: concepts.parse(k) for k in control})
    tasks.append(Task("zs_seen_compositions", control))
    held_shapes = {s for c, s in parsed.values() if s and not c and s.lower() in held_lower}
    tasks.append(Task("zs_seen_shapes", [v for v in concepts.vocabulary if v not in held_shapes]))
    held_only_colours = {c for c, s in parsed.values() if c and not s and c.lower() in held_lower}
    tasks.append(Task("zs_seen_colours", [c for c in concepts.colours if c not in held_only_colours]))
    held_crops = {i for i, crop in enumerate(pool)
                  if sum(matches(crop, h) for h in tasks[0].classes) == 1}
    for task in tasks:
        for i, crop in enumerate(pool):
            if task.key == "zs_heldout_generalised" and i not in held_crops:
                continue
            hits = [k for k, name in enumerate(task.classes) if matches(crop, name)]
            if len(hits) == 1:
                task.index.append(i)
                task.labels.append(hits[0])
    return [t for t in tasks if len(t.classes) >= 2 and t.index]


# ---------------------------------------------------------------------------- evaluation sets
def _source_crops(source: str, ecfg: Mapping[str, Any], data_root: Path, curated: Path,
                  concepts: Concepts, holdout: Sequence[str]) -> list[Crop]:
    kw = dict(context=float(ecfg["crop_context"]), min_side=int(ecfg["min_crop"]))
    if source != TRAIN_REMOVED:
        captions = {p.image: p.caption for p in read_pairs(curated, source)}
        return split_crops(data_root, source, captions, concepts, **kw)
    if not holdout:
        return []
    from components.curation.labels import PhraseMatcher
    from components.data import layout
    from components.data.formats import read_captions

    raw = layout.captions_jsonl(data_root, "train")
    if not raw.is_file():
        raise SystemExit(f"imagetext.zero_shot_sources has {TRAIN_REMOVED!r} but {raw} is missing")
    kept = {p.image for p in read_pairs(curated, "train")}
    matcher = PhraseMatcher(holdout)
    captions = {r["image"]: r["caption"] for r in read_captions(raw)
                if r["image"] not in kept and matcher.find(r["caption"])}
    return split_crops(data_root, "train", captions, concepts, source=TRAIN_REMOVED, **kw)


def _probe_crops(split: str, ecfg: Mapping[str, Any], data_root: Path, curated: Path,
                 concepts: Concepts, limit: int, seed: int) -> list[Crop]:
    captions = {p.image: p.caption for p in read_pairs(curated, split)}
    crops = split_crops(data_root, split, captions, concepts,
                        context=float(ecfg["crop_context"]), min_side=int(ecfg["min_crop"]))
    if 0 < limit < len(crops):
        keep = sorted(random.Random(seed).sample(range(len(crops)), limit))
        crops = [crops[i] for i in keep]
    return crops


# ---------------------------------------------------------------------------- one tower
def _few_shot_index(labels: torch.Tensor, k: int, num_classes: int, seed: int) -> list[int]:
    """``k`` random examples of each class (fewer if a class has fewer)."""
    rng = random.Random(seed)
    out: list[int] = []
    for c in range(num_classes):
        members = [i for i, y in enumerate(labels.tolist()) if y == c]
        out += rng.sample(members, min(k, len(members)))
    return sorted(out)


@torch.no_grad()
def _evaluate_tower(towers, tokenizer, feats: torch.Tensor, slices: Mapping[str, list[int]],
                    tasks: Sequence[Task], probe: Mapping[str, Any], ecfg: Mapping[str, Any],
                    seed: int) -> dict[str, Any]:
    from components.probe import fit_linear_probe, top1_accuracy

    out: dict[str, Any] = {}
    towers.eval()
    pool = towers.image_head(feats[slices["pool"]]) if slices["pool"] else None
    for task in tasks:
        clf = class_embeddings(towers, tokenizer, task.classes, ecfg["templates"])
        scores = zero_shot_scores(pool[task.index], clf)
        labels = torch.tensor(task.labels)
        pred = scores.argmax(dim=1)
        k = len(task.classes)
        confusion = torch.zeros(k, k, dtype=torch.long)
        confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
        per_class = {name: (float(confusion[i, i] / confusion[i].sum())
                            if confusion[i].sum() else None) for i, name in enumerate(task.classes)}
        out[task.key] = {"accuracy": top1_accuracy(scores, labels), "per_class": per_class,
                         "confusion": confusion.tolist()}
    train, test = feats[slices["train"]], feats[slices["test"]]
    ytrain, ytest, k = probe["ytrain"], probe["ytest"], len(probe["classes"])
    wd = float(ecfg["probe_weight_decay"])
    if len(train) and len(test):
        lp = fit_linear_probe(train, ytrain, multilabel=False, num_classes=k, weight_decay=wd,
                              seed=seed)
        out["linear_probe"] = {"accuracy": top1_accuracy(lp.scores(test), ytest)}
        for shots in ecfg["shots"]:
            accs = []
            for r in range(int(ecfg["few_shot_repeats"])):
                idx = _few_shot_index(ytrain, int(shots), k, seed + 1000 * int(shots) + r)
                fs = fit_linear_probe(train[idx], ytrain[idx], multilabel=False, num_classes=k,
                                      weight_decay=wd, seed=seed)
                accs.append(top1_accuracy(fs.scores(test), ytest))
            out[f"shot_{shots}"] = {"accuracy": statistics.fmean(accs), "runs": accs,
                                    "std": statistics.pstdev(accs) if len(accs) > 1 else 0.0}
    return out


def evaluate(params: Mapping[str, Any], checkpoint_dir: str | Path | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Run every protocol on the pretrained (and random-init) towers; returns results.json."""
    from components.imagetext.model import build_towers, load_towers
    from components.imagetext.text import TextConfig
    from components.probe import extract_features

    start = time.perf_counter()
    params = with_defaults(params)
    ecfg = params["imagetext"]
    if int(ecfg["threads"]) > 0:
        torch.set_num_threads(int(ecfg["threads"]))
    ckpt = _path(checkpoint_dir or ecfg["checkpoint_dir"])
    towers, tokenizer, rec = load_towers(ckpt)
    data_root = _path((params.get("data") or {}).get("out", "data/dataset"))
    curated = curated_dir(params)
    manifest = read_manifest(curated)
    holdout = [str(h) for h in (manifest.get("holdout") or rec.get("holdout") or [])]
    concepts = Concepts(rec["vocabulary"], rec.get("colours"))
    seed = int(rec.get("seed", params.get("seed", 0)))

    pool: list[Crop] = []
    for source in ecfg["zero_shot_sources"]:
        pool += _source_crops(str(source), ecfg, data_root, curated, concepts, holdout)
    tasks = zero_shot_tasks(pool, holdout, concepts)
    classes = list(concepts.vocabulary)
    train = _probe_crops(ecfg["probe_train_split"], ecfg, data_root, curated, concepts,
                         int(ecfg["probe_max_train"]), seed)
    test = _probe_crops(ecfg["probe_test_split"], ecfg, data_root, curated, concepts, 0, seed)
    cls_index = {c: i for i, c in enumerate(classes)}
    train = [c for c in train if c.shape in cls_index]
    test = [c for c in test if c.shape in cls_index]
    probe = {"classes": classes, "ytrain": torch.tensor([cls_index[c.shape] for c in train]),
             "ytest": torch.tensor([cls_index[c.shape] for c in test])}
    # each distinct crop is embedded once per tower
    unique = list(dict.fromkeys([*pool, *train, *test]))
    where = {c: i for i, c in enumerate(unique)}
    slices = {name: [where[c] for c in crops] for name, crops in
              (("pool", pool), ("train", train), ("test", test))}
    images = load_crops(data_root, unique)
    img_size = int(rec["image"]["img_size"])

    candidates = [("unicl", towers)]
    if ecfg["baseline"]:
        torch.manual_seed(seed)
        candidates.append(("random", build_towers(rec["image"], TextConfig(**rec["text"]),
                                                  int(rec["embed_dim"]))))
    results: dict[str, Any] = {}
    for name, model in candidates:
        t0 = time.perf_counter()
        feats = extract_features(model.backbone, images, img_size, int(ecfg["batch_size"]),
                                 str(ecfg["device"]))
        model.to("cpu")
        results[name] = _evaluate_tower(model, tokenizer, feats, slices, tasks, probe, ecfg, seed)
        results[name]["seconds"] = round(time.perf_counter() - t0, 2)
        if progress:
            print(f"[imagetext] {name}: " + ", ".join(
                f"{k} {v['accuracy']:.3f}" for k, v in results[name].items() if isinstance(v, dict)))
    sets = {t.key: {"classes": t.classes, "crops": len(t.index), "chance": t.chance, "note": t.note,
                    "sources": _count(pool[i].source for i in t.index)} for t in tasks}
    sets["linear_probe"] = {"classes": classes, "crops": len(test), "train_crops": len(train),
                            "chance": 1.0 / len(classes), "sources": {ecfg["probe_test_split"]: len(test)}}
    for shots in ecfg["shots"]:
        sets[f"shot_{shots}"] = {**sets["linear_probe"], "train_crops": shots * len(classes),
                                 "repeats": int(ecfg["few_shot_repeats"])}
    return {
        "checkpoint": project_relative(ckpt),
        "pretraining": {k: rec.get(k) for k in ("label_key", "image", "text", "embed_dim", "tau",
                                                 "holdout", "holdout_mentions")},
        "holdout": holdout,
        "templates": list(ecfg["templates"]),
        "sets": sets,
        "towers": results,
        "config": {k: v for k, v in ecfg.items() if k != "templates"},
        "wall_s": round(time.perf_counter() - start, 2),
    }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


# ---------------------------------------------------------------------------- outputs
def _columns(results: Mapping[str, Any]) -> list[str]:
    return [k for k in (*COLUMNS, *(k for k in results["sets"] if k.startswith("shot_")))
            if k in results["sets"]]


def _header(key: str, sets: Mapping[str, Any]) -> str:
    title = COLUMNS.get(key) or f"{key.split('_')[1]}-shot"
    return f"{title} (K={len(sets[key]['classes'])}, n={sets[key]['crops']})"


def _cell(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    text = f"{100 * entry['accuracy']:.1f}"
    return f"{text} ± {100 * entry['std']:.1f}" if entry.get("std") else text


def report_markdown(results: Mapping[str, Any]) -> str:
    """The Florence Table 1 analogue and the evaluation sets, as markdown."""
    sets, towers = results["sets"], results["towers"]
    cols = _columns(results)
    pre = results["pretraining"]
    lines = ["# Image-text transfer: UniCL towers (Florence Table 1 analogue)", "",
             f"Checkpoint `{results['checkpoint']}` (UniCL label: `{pre.get('label_key')}`, image "
             f"tower {pre['image']['family']} {pre['image']['size']} at {pre['image']['img_size']} "
             f"px). Top-1 accuracy (%) on ground-truth object crops; chance = 1 / K classes; "
             "k-shot: mean ± spread over draws.", "",
             "| model | " + " | ".join(_header(c, sets) for c in cols) + " |",
             "|---|" + "---|" * len(cols),
             "| chance | " + " | ".join(f"{100 * sets[c]['chance']:.1f}" for c in cols) + " |"]
    for name in ("random", "unicl"):
        if name in towers:
            lines.append(f"| {TOWER_TITLES[name]} | "
                         + " | ".join(_cell(towers[name].get(c)) for c in cols) + " |")
    lines += ["", "## Evaluation sets", "", "| column | classes | crops | from |", "|---|---|---|---|"]
    for c in cols:
        s = sets[c]
        names = ", ".join(s["classes"]) if len(s["classes"]) <= 12 else f"{len(s['classes'])} classes"
        train = f"; probe fitted on {s['train_crops']} train crops" if "train_crops" in s else ""
        src = ", ".join(f"{k} {v}" for k, v in s["sources"].items())
        lines.append(f"| {c} | {names} | {s['crops']} | {src}{train} |")
    lines += ["", f"Held-out phrases (never named in training captions): "
                  f"{', '.join(results['holdout']) or 'none'}. Prompt templates (averaged): "
                  + "; ".join(f"`{t}`" for t in results["templates"]) + "."]
    if "zs_heldout" in sets and "unicl" in towers and "zs_heldout" in towers["unicl"]:
        per = towers["unicl"]["zs_heldout"]["per_class"]
        lines += ["", "UniCL zero-shot accuracy per held-out class: " + ", ".join(
            f"{k} {'n/a' if v is None else f'{100 * v:.0f}%'}" for k, v in per.items()) + "."]
        if sets["zs_heldout"].get("note"):
            lines.append(f"Note: {sets['zs_heldout']['note']}.")
    lines += ["", f"Evaluation wall time {results['wall_s']:.0f} s.", ""]
    return "\n".join(lines)


def write_plot(results: Mapping[str, Any], path: Path) -> None:
    """Grouped bars: chance, random-init and UniCL accuracy for every protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = _columns(results)
    rows = [("chance", [results["sets"][c]["chance"] for c in cols], "lightgray")]
    for name, colour in (("random", "tab:orange"), ("unicl", "tab:blue")):
        if name in results["towers"]:
            rows.append((TOWER_TITLES[name], [results["towers"][name].get(c, {}).get(
                "accuracy", math.nan) for c in cols], colour))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(cols)), 3.8), dpi=100)
    width = 0.8 / len(rows)
    for j, (label, values, colour) in enumerate(rows):
        xs = [i + (j - (len(rows) - 1) / 2) * width for i in range(len(cols))]
        ax.bar(xs, [100 * v for v in values], width, label=label, color=colour)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([textwrap.fill(COLUMNS.get(c, f"{c.split('_')[1]}-shot"), 14)
                        for c in cols], fontsize=7)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("UniCL transfer on object crops vs chance and random init")
    ax.legend(fontsize=8, loc="upper left")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.9)
    fig.savefig(path)
    plt.close(fig)


def flat_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """``<tower>.<protocol>`` accuracies and ``chance.<protocol>`` (MLflow metric names)."""
    out = {f"chance.{c}": float(results["sets"][c]["chance"]) for c in _columns(results)}
    for name, tower in results["towers"].items():
        for key, entry in tower.items():
            if isinstance(entry, dict) and "accuracy" in entry:
                out[f"{name}.{key}"] = float(entry["accuracy"])
    return out


def metrics_row(results: Mapping[str, Any]) -> dict[str, float]:
    """metrics.json: the UniCL accuracies under the DVC column names
    (:mod:`components.common.dvc_metrics`) that the vocabulary has; the others are left out."""
    from components.common import dvc_metrics

    tower = results["towers"].get("unicl", {})
    wanted = {f"{k}_acc": tower[k]["accuracy"] for k in _columns(results) if k in tower}
    return dvc_metrics.row(**{k: v for k, v in wanted.items() if k in dvc_metrics.COLUMNS})


def write_outputs(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """report.md, results.json, metrics.json and accuracy.png into ``out_dir`` (atomically)."""
    from components.common.atomic import atomic_dir

    out_dir = _path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        (tmp / "metrics.json").write_text(json.dumps(metrics_row(results), indent=2) + "\n")
        (tmp / "report.md").write_text(report_markdown(results))
        write_plot(results, tmp / "accuracy.png")
    return out_dir
