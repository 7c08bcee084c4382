"""``python -m components.data``: generate the synthetic dataset or import real data.

Subcommands::

    generate           synthetic dataset from params.yaml data.synthetic (+ --set overrides)
    import-coco        COCO instances JSON per split + image folders
    import-openimages  OpenImages V6/V7 CSVs + <ImageID>.jpg folders
    import-imagetext   image-caption pairs (JSONL / CSV)
    prepare            whatever params.yaml data.source says, into data.out (the DVC stage)

Every command writes its output folder atomically and ends with a one-line summary.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from components.common.env import apply_defaults
from components.common.params import DEFAULT_PARAMS, apply_overrides, load_params, parse_override
from components.data.formats import DataFormatError

__all__ = ["main", "build_parser", "prepare", "summary"]


def _split_paths(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        split, sep, path = item.partition("=")
        if not sep or not split or not path:
            raise DataFormatError(f"{flag} {item!r}: expected SPLIT=PATH, e.g. {flag} train=/data/train.json")
        out[split] = path
    return out


def _images_arg(items: list[str] | None) -> dict[str, str] | str | None:
    """``--images DIR`` (all splits) or ``--images SPLIT=DIR ...``."""
    if not items:
        return None
    if len(items) == 1 and "=" not in items[0]:
        return items[0]
    return _split_paths(items, "--images")


def _with_overrides(params: dict, sets: list[str] | None) -> dict:
    """Apply ``--set key=value``; a key that is not a full dotted name is tried under
    ``data.synthetic`` (so ``--set image_size=128`` works)."""
    for text in sets or []:
        key, value = parse_override(text)
        try:
            params = apply_overrides(params, {key: value})
        except KeyError as first:
            try:
                params = apply_overrides(params, {f"data.synthetic.{key}": value})
            except KeyError:
                synthetic = sorted((params.get("data") or {}).get("synthetic") or {})
                raise DataFormatError(f"{first.args[0]}; data.synthetic keys: {synthetic}") from None
    return params


def _resolve(value: Any, base: Path) -> Any:
    """Paths from params are relative to the params file's folder."""
    if isinstance(value, Mapping):
        return {k: _resolve(v, base) for k, v in value.items()}
    if isinstance(value, str) and value:
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base / p)
    return value


def summary(kind: str, out: Path, manifest: dict, seconds: float) -> str:
    parts = [f"{s} {v['images']} img/{v['annotations']} ann" + (f"/{v['crowd']} crowd" if v["crowd"] else "")
             for s, v in manifest["splits"].items()]
    caps = sum(manifest["captions"].values())
    return (f"[data] {kind} -> {out}: {', '.join(parts) or 'no splits'}; captions {caps}; "
            f"unlabeled {manifest['unlabeled']}; content_hash {manifest['content_hash'][:12]}; {seconds:.1f} s")


def prepare(params: Mapping[str, Any], params_dir: Path, out: Path | None = None,
            progress: bool = True) -> tuple[str, Path, dict]:
    """Run what ``data.source`` names; return ``(kind, out, manifest)``."""
    from components.data.importers import get_importer
    from components.data.synthetic import generate

    data = params.get("data") or {}
    source = data.get("source", "synthetic")
    out = Path(out) if out is not None else Path(_resolve(data.get("out", "data/dataset"), params_dir))
    if source == "synthetic":
        return source, out, generate(out, data.get("synthetic"), int(params.get("seed", 0)), progress=progress)
    importer = get_importer(source)
    if not isinstance(data.get(source), Mapping):
        raise DataFormatError(f"params data.{source}: missing section; see params.yaml for the keys")
    return source, out, importer(out, **_resolve(dict(data[source]), params_dir), progress=progress)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="render the synthetic dataset", description=(
        "Render the synthetic multi-object dataset from params data.synthetic and the top-level seed."))
    p.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params file (default: %(default)s)")
    p.add_argument("--out", type=Path, help="output folder (default: params data.out)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a param, e.g. --set data.synthetic.image_size=128 or --set seed=3 "
                        "(keys not found at top level are tried under data.synthetic); repeatable")
    p.add_argument("--workers", type=int, help="render processes (default: auto, 1 for small jobs)")

    p = sub.add_parser("import-coco", help="import COCO instances JSON + images",
                       description="Copy a COCO dataset into the dataset layout.")
    p.add_argument("--annotations", action="append", required=True, metavar="SPLIT=JSON",
                   help="instances JSON per split, e.g. train=/data/coco/instances_train2017.json; repeatable")
    p.add_argument("--images", action="append", required=True, metavar="[SPLIT=]DIR",
                   help="image folder the file_names are relative to: one DIR for all splits or SPLIT=DIR")
    p.add_argument("--out", type=Path, required=True, help="output dataset folder (replaced atomically)")

    p = sub.add_parser("import-openimages", help="import OpenImages V6/V7 CSVs + images",
                       description="Convert OpenImages boxes to COCO JSON (box-derived masks), keeping the CSVs.")
    p.add_argument("--classes", required=True, help="class-descriptions CSV (header optional)")
    p.add_argument("--bbox", action="append", required=True, metavar="SPLIT=CSV", help="bbox CSV per split")
    p.add_argument("--labels", action="append", metavar="SPLIT=CSV", help="image-level labels CSV per split")
    p.add_argument("--images", action="append", required=True, metavar="[SPLIT=]DIR",
                   help="folder of <ImageID>.jpg: one DIR for all splits or SPLIT=DIR")
    p.add_argument("--out", type=Path, required=True, help="output dataset folder (replaced atomically)")

    p = sub.add_parser("import-imagetext", help="import image-caption pairs",
                       description="Copy image-caption pairs (JSONL or CSV with header) into the layout.")
    p.add_argument("--pairs", action="append", required=True, metavar="SPLIT=FILE",
                   help="JSONL ({image|image_path|file_name, caption|text}) or CSV per split")
    p.add_argument("--images", action="append", metavar="[SPLIT=]DIR",
                   help="folder the image paths are relative to (default: the pairs file's folder)")
    p.add_argument("--out", type=Path, required=True, help="output dataset folder (replaced atomically)")

    p = sub.add_parser("prepare", help="build data.out from data.source (DVC stage)", description=(
        "Read params data.source and generate (synthetic) or import (coco/openimages/imagetext, paths from "
        "data.<source>, relative to the params file) into data.out."))
    p.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params file (default: %(default)s)")
    p.add_argument("--out", type=Path, help="output folder (default: params data.out)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a param; repeatable")
    return parser


def _run(args: argparse.Namespace) -> tuple[str, Path, dict]:
    from components.data.importers import import_coco, import_imagetext, import_openimages

    if args.command in ("generate", "prepare"):
        params = _with_overrides(load_params(args.params), args.set)
        params_dir = Path(args.params).resolve().parent
        if args.command == "prepare":
            return prepare(params, params_dir, args.out)
        from components.data.synthetic import generate

        data = params.get("data") or {}
        out = args.out if args.out is not None else Path(_resolve(data.get("out", "data/dataset"), params_dir))
        manifest = generate(out, data.get("synthetic"), int(params.get("seed", 0)), workers=args.workers,
                            progress=True)
        return "synthetic", out, manifest
    if args.command == "import-coco":
        return "coco", args.out, import_coco(args.out, _split_paths(args.annotations, "--annotations"),
                                             _images_arg(args.images), progress=True)
    if args.command == "import-openimages":
        return "openimages", args.out, import_openimages(
            args.out, args.classes, _split_paths(args.bbox, "--bbox"), _images_arg(args.images),
            _split_paths(args.labels, "--labels"), progress=True)
    return "imagetext", args.out, import_imagetext(args.out, _split_paths(args.pairs, "--pairs"),
                                                   _images_arg(args.images), progress=True)


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if args.command == "prepare":  # the pipeline stage: tracked as a nested MLflow run
            from components.tracking.runs import stage_run

            with stage_run("prepare", load_params(args.params)):
                kind, out, manifest = _run(args)
        else:
            kind, out, manifest = _run(args)
    except (DataFormatError, KeyError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2
    print(summary(kind, out, manifest, time.perf_counter() - start))
    return 0
