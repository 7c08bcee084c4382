"""MLflow's scoring-request JSON -> the list of images the detector pyfunc takes.

Accepted bodies (``Content-Type: application/json``), one image per row:

* ``{"dataframe_split": {"columns": ["image"], "data": [["<base64>"], ...]}}``
* ``{"dataframe_records": [{"image": "<base64>"}, ...]}``
* ``{"inputs": {"image": ["<base64>", ...]}}`` or ``{"instances": [...]}`` of the same;
* ``{"inputs": [[[[r, g, b], ...], ...], ...]}``: uint8 HxWx3 RGB arrays (N x H x W x 3).

A string is base64 of JPEG/PNG bytes, never a path. Problems raise :class:`RequestError`
with the HTTP status and one line.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Limits", "RequestError", "parse_request"]

KEYS = ("dataframe_split", "dataframe_records", "inputs", "instances")


@dataclass(frozen=True)
class Limits:
    """Per request: body bytes, images, and pixels per image (header size, before decoding)."""
    max_body_bytes: int = 32 * 1024 * 1024
    max_images: int = 16
    max_pixels: int = 40_000_000


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


def _b64(value: Any, row: int) -> bytes:
    if not isinstance(value, str):
        raise RequestError(400, f"row {row}: image: expected base64 text of JPEG/PNG bytes, "
                                f"got {type(value).__name__}")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"row {row}: image: not valid base64") from None


def _column(columns: Any) -> None:
    if columns != ["image"]:
        raise RequestError(400, f"the input must have exactly one column 'image', got {columns!r}")


def _images_from(payload: Any, key: str) -> list[Any]:
    if key == "dataframe_split":
        if not isinstance(payload, dict) or "data" not in payload:
            raise RequestError(400, "dataframe_split needs {'columns': ['image'], 'data': [...]}")
        _column(payload.get("columns"))
        rows = payload["data"]
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 1 for r in rows):
            raise RequestError(400, "dataframe_split 'data' must be a list of one-element rows")
        return [_b64(r[0], i) for i, r in enumerate(rows)]
    if key == "dataframe_records":
        if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
            raise RequestError(400, "dataframe_records must be a list of {'image': ...} objects")
        for r in payload:
            _column(sorted(r))
        return [_b64(r["image"], i) for i, r in enumerate(payload)]
    # inputs / instances: {"image": [...]}, a list of such records, or nested arrays
    if isinstance(payload, dict):
        _column(sorted(payload))
        values = payload["image"]
        values = values if isinstance(values, list) else [values]
        return [_b64(v, i) for i, v in enumerate(values)]
    if isinstance(payload, list) and payload and all(isinstance(r, dict) for r in payload):
        for r in payload:
            _column(sorted(r))
        return [_b64(r["image"], i) for i, r in enumerate(payload)]
    if isinstance(payload, list) and payload and all(isinstance(r, str) for r in payload):
        return [_b64(v, i) for i, v in enumerate(payload)]
    try:
        arr = np.asarray(payload)
    except (ValueError, TypeError):
        raise RequestError(400, f"{key}: arrays must be rectangular N x H x W x 3") from None
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or not np.issubdtype(arr.dtype, np.integer):
        raise RequestError(400, f"{key}: expected uint8 images N x H x W x 3, got shape "
                                f"{arr.shape} of {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise RequestError(400, f"{key}: pixel values must be 0..255")
    return list(arr.astype(np.uint8))


def parse_request(body: bytes, content_type: str | None, limits: Limits) -> list[Any]:
    """The images of one request: ``bytes`` (encoded) or ``(H, W, 3)`` uint8 RGB arrays."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json":
        raise RequestError(415, f"Content-Type must be application/json, got {mime or 'none'}")
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body is {len(body)} bytes; the limit is "
                                f"{limits.max_body_bytes}")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise RequestError(400, f"request JSON must be an object with one of {list(KEYS)}")
    keys = [k for k in KEYS if k in doc]
    extra = sorted(set(doc) - set(KEYS) - {"params"})
    if len(keys) != 1 or extra:
        raise RequestError(400, f"request JSON must have exactly one of {list(KEYS)}, got "
                                f"{sorted(doc)}")
    images = _images_from(doc[keys[0]], keys[0])
    if not images:
        raise RequestError(400, "no images in the request")
    if len(images) > limits.max_images:
        raise RequestError(413, f"{len(images)} images in one request; the limit is "
                                f"{limits.max_images}")
    return images
