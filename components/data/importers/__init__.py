"""Importers for real data formats, looked up by name (``params.yaml`` ``data.source``).

Contract of a registered importer::

    fn(out: Path, **paths, progress: bool = False) -> dict   # the manifest

where ``paths`` are exactly the keys of the ``data.<name>`` section of ``params.yaml``. It
writes the whole dataset folder atomically (see ``components.common.atomic``), checks only
what it needs to convert (readable files, required columns, safe paths) and leaves deep
checks to the validation stage. Adding a source = a module here, one :data:`IMPORTERS`
entry, and a ``data.<name>`` section in ``params.yaml``.
"""
from __future__ import annotations

from typing import Callable

from components.common.registry import Registry
from components.data.importers._common import UnsafePathError
from components.data.importers.coco import import_coco
from components.data.importers.imagetext import import_imagetext
from components.data.importers.openimages import import_openimages

__all__ = ["IMPORTERS", "Importer", "UnsafePathError", "get_importer",
           "import_coco", "import_imagetext", "import_openimages"]

Importer = Callable[..., dict]

IMPORTERS: Registry[Importer] = Registry("data source",
                                         "components/data/importers/, or data.source: synthetic")
IMPORTERS.register("coco", import_coco)
IMPORTERS.register("openimages", import_openimages)
IMPORTERS.register("imagetext", import_imagetext)


def get_importer(name: str) -> Importer:
    return IMPORTERS.get(name)
