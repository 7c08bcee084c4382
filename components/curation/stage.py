"""One curation run: read the dataset's caption pairs, apply the rules, validate, write.

Outputs appear whole or not at all: ``curation.out`` (``<split>.jsonl`` + ``manifest.json``)
and ``curation.report`` are built in temp folders and renamed into place only after the
curated set passed its GX suite (:mod:`components.validation.suites.curated`); a failure
leaves any previous outputs as they were.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from tqdm import tqdm

from components.common.atomic import atomic_dir, write_json_atomic, write_text_atomic
from components.common.env import project_relative
from components.curation.config import CurationConfig
from components.curation.filters import TRAIN, Curator, EvalImages, Pair, SplitResult
from components.curation.images import ImageInfo, image_info
from components.curation.labels import dataset_vocabulary
from components.curation.report import counts_json, markdown, metrics_row
from components.data import layout
from components.data.formats import write_jsonl
from components.data.manifest import sha256_file
from components.validation.paths import UnsafePath, resolve_inside

__all__ = ["Curation", "CurationError", "read_pairs", "image_infos", "curate_dataset", "run"]

SCHEMA_VERSION = 1
_FIX = "fix or remove the line, or rebuild the dataset (python -m components.data prepare)"


class CurationError(RuntimeError):
    """Bad input or a curated set that fails its suite; the message says where and what to do."""


def read_pairs(root: Path, split: str) -> list[Pair]:
    """The pairs of ``captions/<split>.jsonl``; errors name ``file:line``."""
    path = layout.captions_jsonl(root, split)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CurationError(f"{path}: not found; the dataset has no captions for split "
                            f"{split!r} (set curation.splits, or import image-text pairs with "
                            "data.source: imagetext)") from None
    pairs = []
    for no, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CurationError(f"{where}: unreadable line ({err}); {_FIX}") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("image"), str) or \
                not rec["image"].strip() or not isinstance(rec.get("caption"), str):
            raise CurationError(f"{where}: need a JSON object with string 'image' and "
                                f"'caption', got {line[:200].decode('utf-8', 'replace')}; {_FIX}")
        pairs.append(Pair(split, no, rec["image"], rec["caption"]))
    return pairs


def image_infos(root: Path, pairs: list[Pair], progress: bool = True) -> dict[str, ImageInfo]:
    """sha256, size and pHash of every distinct image the pairs reference (one read each)."""
    images = Path(layout.images_dir(root)).resolve()
    first: dict[str, Pair] = {}
    for p in pairs:
        first.setdefault(p.image, p)
    out = {}
    for rel, pair in tqdm(first.items(), desc="curate: images", unit="img", disable=not progress):
        where = f"{layout.captions_jsonl(root, pair.split)}:{pair.line}"
        try:
            out[rel] = image_info(resolve_inside(images, rel))
        except UnsafePath as err:
            raise CurationError(f"{where}: unsafe image path ({err}); {_FIX}") from None
        except FileNotFoundError:
            raise CurationError(f"{where}: image {rel!r} not found under {images}; {_FIX}"
                                ) from None
        except Exception as err:  # noqa: BLE001 - any decoder error means "not an image"
            raise CurationError(f"{where}: image {rel!r} is not a readable image "
                                f"({type(err).__name__}: {err}); {_FIX}") from None
    return out


@dataclass
class Curation:
    """What :func:`curate_dataset` found: per-split results, image facts, the rules used."""
    results: list[SplitResult]
    infos: dict[str, ImageInfo]
    curator: Curator
    vocabulary_source: str


def curate_dataset(root: Path, cfg: CurationConfig, progress: bool = True) -> Curation:
    """Apply the rules of ``cfg`` to every split of ``cfg.splits`` (nothing written)."""
    pairs = {s: read_pairs(root, s) for s in cfg.splits}
    if not any(pairs.values()):
        raise CurationError(f"{layout.captions_jsonl(root, '<split>')}: no caption pairs in "
                            f"splits {list(cfg.splits)}")
    infos = image_infos(root, [p for ps in pairs.values() for p in ps], progress)
    if cfg.vocabulary is not None:
        vocabulary, source = list(cfg.vocabulary), "params curation.vocabulary"
    else:
        vocabulary, source = dataset_vocabulary(root, cfg.splits)
    curator = Curator(cfg, vocabulary)
    eval_imgs = EvalImages({p.image: infos[p.image] for s, ps in pairs.items() if s != TRAIN
                            for p in ps}, cfg.phash_max_distance)
    results = [curator.curate(s, pairs[s], infos, eval_imgs) for s in cfg.splits]
    return Curation(results, infos, curator, source)


def _source(root: Path) -> dict[str, Any]:
    """Where the pairs came from: the folder, its manifest content hash and DVC hash."""
    from components.tracking.lineage import content_hash, dataset_hash

    try:
        dvc_hash = dataset_hash(root)
    except Exception:  # noqa: BLE001 - lineage must not fail the stage (dvc missing, etc.)
        dvc_hash = None
    return {"dataset": project_relative(root), "content_hash": content_hash(root),
            "dvc_hash": dvc_hash}


def _write_split(folder: Path, result: SplitResult, infos: Mapping[str, ImageInfo]) -> str:
    name = f"{result.split}.jsonl"
    write_jsonl(folder / name, ({"image": p.image, "caption": p.caption, "labels": labels,
                                 "sha256": infos[p.image].sha256} for p, labels in result.kept))
    return name


def run(params: Mapping[str, Any], *, dataset: str | Path | None = None,
        progress: bool = True) -> dict[str, Any]:
    """Curate ``dataset`` (default: params ``data.out``) into ``curation.out`` and write the
    report into ``curation.report``; returns the manifest plus ``counts`` and ``wall_s``.

    Raises :class:`CurationError` for bad input or a curated set failing its suite (nothing
    is written then).
    """
    from components.validation.suites.curated import CuratedRules, check_curated

    start = time.perf_counter()
    cfg = CurationConfig.from_params(params)
    root = Path(dataset or (params.get("data") or {}).get("out", "data/dataset"))
    if not root.is_dir():
        raise CurationError(f"dataset folder {root} not found: run the prepare stage first "
                            "(python -m components.data prepare --params params.yaml)")
    cur = curate_dataset(root, cfg, progress)
    vocabulary = cur.curator.labels.names
    rules = CuratedRules(vocabulary=tuple(vocabulary), caption_words=cfg.caption_words,
                         caption_chars=cfg.caption_chars, holdout=cur.curator.holdout.find,
                         train_file=f"{TRAIN}.jsonl")
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "source": _source(root),
        "params": cfg.as_dict(),
        "vocabulary": vocabulary,
        "vocabulary_source": cur.vocabulary_source,
        "holdout": cur.curator.holdout.names,
        "splits": {r.split: r.counts() for r in cur.results},
    }
    with atomic_dir(cfg.out) as out_tmp, atomic_dir(cfg.report) as report_tmp:
        names = [_write_split(out_tmp, r, cur.infos) for r in cur.results]
        failures = check_curated(out_tmp, layout.images_dir(root), rules)
        if failures:
            lines = "\n".join(f"  {Path(cfg.out) / str(f)}" for f in failures[:20])
            more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
            raise CurationError(f"the curated set failed its suite ({len(failures)} problem(s)); "
                                f"nothing was written:\n{lines}{more}")
        manifest["files"] = {name: sha256_file(out_tmp / name) for name in names}
        write_json_atomic(out_tmp / layout.MANIFEST, manifest)
        counts = counts_json(cur.results, cur.curator)
        wall = time.perf_counter() - start
        write_json_atomic(report_tmp / "counts.json", counts)
        write_json_atomic(report_tmp / "metrics.json",
                          metrics_row(counts, images_per_s=len(cur.infos) / wall))
        write_text_atomic(report_tmp / "report.md",
                          markdown(cur.results, manifest, counts, cfg, wall))
    return {**manifest, "counts": counts, "wall_s": round(wall, 3)}
