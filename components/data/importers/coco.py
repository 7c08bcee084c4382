"""Import a COCO instances dataset (user-provided JSON per split + image folders).

Annotations are kept as given (ids, polygon / compressed / uncompressed RLE segmentations,
``iscrowd``, images without annotations); only ``file_name`` is rewritten to
``<split>/<original relative path>`` because the images are copied into
``images/<split>/`` with their subfolders preserved.
"""
from __future__ import annotations

from typing import Mapping

from tqdm import tqdm

from components.common.atomic import atomic_dir
from components.data import layout
from components.data.formats import DataFormatError, read_coco, write_json
from components.data.importers._common import (PathLike, copy_image, image_dirs, lineage, safe_source,
                                               split_map)
from components.data.manifest import write_manifest

__all__ = ["import_coco"]


def import_coco(out: PathLike, annotations: Mapping[str, PathLike],
                images: Mapping[str, PathLike] | PathLike, *, progress: bool = False) -> dict:
    """Copy a COCO dataset into the layout at ``out`` (atomically); return the manifest.

    Args:
        out: dataset folder to create/replace.
        annotations: ``{split: instances_*.json}``.
        images: ``{split: image folder}`` (or one folder for every split); each record's
            ``file_name`` is relative to it and must stay inside it.
    """
    ann_files = split_map(annotations, "data.coco.annotations")
    if not ann_files:
        raise DataFormatError("data.coco.annotations is empty: give split -> instances_*.json")
    dirs = image_dirs(images, list(ann_files), "data.coco.images")
    with atomic_dir(out) as tmp:
        for split, ann_path in ann_files.items():
            coco = read_coco(ann_path)
            new_images = []
            for rec in tqdm(coco["images"], desc=f"coco {split}", unit="img", disable=not progress):
                where = f"{ann_path}: images[id={rec['id']}]"
                src, rel = safe_source(dirs[split], rec["file_name"], where)
                copy_image(src, layout.images_dir(tmp) / split / rel, where)
                new_images.append({**rec, "file_name": f"{split}/{rel}"})
            write_json(layout.coco_json(tmp, split), {**coco, "images": new_images})
        manifest = write_manifest(tmp, lineage("coco", "as-given", annotations=ann_files, images=dirs))
    return manifest
