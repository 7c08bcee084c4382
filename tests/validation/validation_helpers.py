"""Helpers for the validation tests: edit dataset files, craft bad images."""
from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any, Callable

VALIDATION_CFG = {"max_pixels": 40_000_000, "caption_length": [3, 1000], "decode_images": True,
                  "bbox_tolerance_px": 1.0}


# ---------------------------------------------------------------------------- edit helpers
def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def edit_json(path: Path, fn: Callable[[Any], Any]) -> None:
    """Apply ``fn`` to the parsed file (in place or returning a new object) and write it."""
    data = load_json(path)
    new = fn(data)
    path.write_text(json.dumps(data if new is None else new))   # NaN/Infinity pass through


def edit_lines(path: Path, fn: Callable[[list[bytes]], list[bytes]]) -> None:
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    path.write_bytes(b"\n".join(fn(lines)) + b"\n")


def png_bomb(width: int, height: int) -> bytes:
    """A ~70-byte PNG whose header declares ``width x height`` (pixel data is not there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))
