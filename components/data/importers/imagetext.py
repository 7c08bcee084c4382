"""Import image-caption pairs (JSONL or headered CSV) for image-text pretraining.

Accepted record keys: the image under ``image`` / ``image_path`` / ``file_name``, the text
under ``caption`` / ``text``. Image paths are relative to the split's image folder (default:
the pairs file's folder). Images are copied to ``images/<split>/<path>`` (once, however many
captions they have) and the pairs written as ``captions/<split>.jsonl``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from tqdm import tqdm

from components.common.atomic import atomic_dir
from components.data import layout
from components.data.formats import DataFormatError, read_csv, read_jsonl, write_captions
from components.data.importers._common import (PathLike, copy_image, image_dirs, lineage, safe_source,
                                               split_map)
from components.data.manifest import write_manifest

__all__ = ["import_imagetext", "read_pairs", "IMAGE_KEYS", "TEXT_KEYS"]

IMAGE_KEYS = ("image", "image_path", "file_name")
TEXT_KEYS = ("caption", "text")


def _pick(rec: Mapping, keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in rec and rec[key] not in (None, ""):
            return rec[key]
    return None


def read_pairs(path: PathLike) -> list[tuple[int, object, object]]:
    """``[(line, image, caption)]`` from a JSONL or CSV pairs file (by suffix; else JSONL)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        rows = read_csv(path)
        header = set(rows[0]) if rows else set()
        if rows and (not header & set(IMAGE_KEYS) or not header & set(TEXT_KEYS)):
            raise DataFormatError(
                f"{path}: CSV header {sorted(header)} needs an image column {IMAGE_KEYS} and a text column {TEXT_KEYS}")
        records = [(i, r) for i, r in enumerate(rows, start=2)]
    else:
        records = list(enumerate(read_jsonl(path), start=1))
    out = []
    for line, rec in records:
        image, text = _pick(rec, IMAGE_KEYS), _pick(rec, TEXT_KEYS)
        if image is None or text is None:
            raise DataFormatError(
                f"{path}:{line}: record needs an image key {IMAGE_KEYS} and a caption key {TEXT_KEYS} "
                f"(got keys {sorted(rec)})")
        out.append((line, image, text))
    return out


def import_imagetext(out: PathLike, pairs: Mapping[str, PathLike],
                     images: Mapping[str, PathLike] | PathLike | None = None, *, progress: bool = False) -> dict:
    """Copy image-caption pairs into the layout at ``out`` (atomically); return the manifest.

    Args:
        pairs: ``{split: pairs.jsonl | pairs.csv}``.
        images: ``{split: folder}`` the image paths are relative to (or one folder for
            every split); default: each pairs file's own folder.
    """
    pair_files = split_map(pairs, "data.imagetext.pairs")
    if not pair_files:
        raise DataFormatError("data.imagetext.pairs is empty: give split -> JSONL/CSV of image + caption")
    dirs = image_dirs(images, list(pair_files), "data.imagetext.images",
                      default={s: p.parent for s, p in pair_files.items()})
    with atomic_dir(out) as tmp:
        for split, pairs_path in pair_files.items():
            records, copied = [], set()
            for line, image, text in tqdm(read_pairs(pairs_path), desc=f"imagetext {split}", unit="pair",
                                          disable=not progress):
                where = f"{pairs_path}:{line}"
                src, rel = safe_source(dirs[split], image, where)
                if rel not in copied:
                    copy_image(src, layout.images_dir(tmp) / split / rel, where)
                    copied.add(rel)
                records.append({"image": f"{split}/{rel}", "caption": str(text)})
            write_captions(layout.captions_jsonl(tmp, split), records)
        manifest = write_manifest(tmp, lineage("imagetext", "none", pairs=pair_files, images=dirs))
    return manifest
