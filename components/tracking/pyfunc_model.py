"""The registered detector as an MLflow pyfunc model, without pickling torch objects.

Why: MLflow 3.17 refuses to unpickle models by default, and a pickled detector would tie the
registry to one torch/mmdet build. The logged model holds only data: the mmengine config
(``config``) and a safetensors state dict (``weights``); :class:`DetectorPyFunc` rebuilds the
network from the config at load time and loads the weights (no pickle anywhere).

It is logged "from code" (``python_model=<path of pyfunc_entry.py>``), and ``components/``
is copied into the model (``code_paths``): the network is rebuilt by the same builder code
that trained it, so a later refactor of ``components/`` cannot silently change or break old
registered versions, and ``mlflow models serve`` works outside this checkout. In a process
that already imported ``components`` (the pipeline, tests), the already imported code is used.

Input (``predict``), the request contract:
  * a pandas DataFrame with an ``image`` column of encoded JPEG/PNG bytes, or of base64 text of
    them (what MLflow's REST protocol carries). The logged model's signature says so
    (``image: binary``) and its input example is one such image. A string in this column is
    ALWAYS base64, never a path: a served request cannot make the server open a file;
  * an ``(N, H, W, 3)`` or ``(H, W, 3)`` uint8 RGB array, or a list of them;
  * in-process only: a list of local image paths (``str`` / ``Path``).
  Every image is checked before it is decoded: JPEG or PNG, at most ``max_pixels`` (width x
  height from the header, a decompression-bomb guard). A bad image raises
  :class:`InvalidImage` naming its row and the rule.
Output: one dict per image: ``boxes`` [[x1, y1, x2, y2], ...] in input pixels, ``labels``
[int], ``scores`` [float], ``masks`` [COCO RLE {"size": [h, w], "counts": str}] (empty list
for box-only models) and ``label_names`` when the config names its classes.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import mlflow
import numpy as np

from components.common.env import PROJECT_ROOT

__all__ = ["DetectorPyFunc", "InvalidImage", "log_detector_model", "pinned_requirements",
           "DEFAULT_BUILDER", "ENTRY_FILE", "MAX_PIXELS", "signature", "check_image_bytes"]

DEFAULT_BUILDER = "components.train.build:build_detector"
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")
MAX_PIXELS = 40_000_000  # the validation gate's default (validation.max_pixels)
FORMATS = {"JPEG", "PNG"}
REQUIREMENTS = ("torch", "torchvision", "mmengine", "mmcv", "mmdet", "mmpretrain", "timm",
                "safetensors", "pycocotools", "numpy", "opencv-python", "pandas", "mlflow")


def _resolve(spec: str) -> Callable[[str], Any]:
    """``"package.module:function"`` -> the function (imported lazily)."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"builder {spec!r}: expected 'package.module:function'")
    return getattr(importlib.import_module(module), name)


class InvalidImage(ValueError):
    """One input image breaks the request contract: ``row`` (0-based) and the rule."""

    def __init__(self, row: int, rule: str) -> None:
        self.row, self.rule = row, rule
        super().__init__(f"row {row}: {rule}")


def check_image_bytes(data: bytes, row: int, max_pixels: int = MAX_PIXELS) -> None:
    """JPEG/PNG whose header size is at most ``max_pixels``; raises :class:`InvalidImage`.

    Reads only the header (PIL), so a tiny file that would expand to gigabytes is refused
    before anything is decoded.
    """
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidImage(row, "image: empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, (w, h) = im.format, im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidImage(row, "image: not a JPEG or PNG file") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidImage(row, f"image: larger than {max_pixels} pixels") from None
    if fmt not in FORMATS:
        raise InvalidImage(row, f"image: only JPEG and PNG are accepted, got {fmt}")
    if w * h > max_pixels:
        raise InvalidImage(row, f"image: {w}x{h} = {w * h} pixels is more than {max_pixels}")


def _imdecode(data: bytes, row: int, max_pixels: int) -> np.ndarray:
    """Decode like mmcv's ``LoadImageFromFile`` (cv2 backend, ``color`` flag): BGR, EXIF-rotated."""
    import cv2

    check_image_bytes(data, row, max_pixels)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise InvalidImage(row, "image: could not be decoded (truncated or corrupt)")
    return img


def _b64(text: str, row: int) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(row, "image: a string must be base64 of JPEG/PNG bytes") from None


def _array(item: np.ndarray, row: int) -> np.ndarray:
    """HxWx3 RGB array (uint8, or integers 0..255 as JSON numbers parse) -> BGR uint8."""
    if item.ndim != 3 or item.shape[2] != 3 or item.shape[0] < 1 or item.shape[1] < 1:
        raise InvalidImage(row, f"image: arrays must be HxWx3 RGB, got shape {item.shape}")
    if item.dtype != np.uint8:
        if not np.issubdtype(item.dtype, np.integer) or item.min() < 0 or item.max() > 255:
            raise InvalidImage(row, f"image: arrays must be uint8 (0..255), got {item.dtype}")
        item = item.astype(np.uint8)
    return np.ascontiguousarray(item[:, :, ::-1])


def _decode(item: Any, row: int, max_pixels: int, paths: bool) -> np.ndarray:
    """One image as HxWx3 uint8 BGR (what mmdet's pipelines expect)."""
    if isinstance(item, np.ndarray):
        return _array(item, row)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _imdecode(bytes(item), row, max_pixels)
    if isinstance(item, Path) or (isinstance(item, str) and paths):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        return _imdecode(path.read_bytes(), row, max_pixels)
    if isinstance(item, str):
        return _imdecode(_b64(item, row), row, max_pixels)
    raise InvalidImage(row, f"image: unsupported value of type {type(item).__name__}; send "
                            "base64 JPEG/PNG bytes")


def _images(model_input: Any, max_pixels: int = MAX_PIXELS) -> list[np.ndarray]:
    """The request contract (module docstring): DataFrame column, arrays, in-process paths."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with mlflow
        pd = None
    paths = False
    if pd is not None and isinstance(model_input, pd.DataFrame):
        if list(model_input.columns) != ["image"]:
            raise InvalidImage(-1, f"input must have exactly one column 'image', got "
                                   f"{list(model_input.columns)}")
        items = list(model_input["image"])
    elif isinstance(model_input, np.ndarray) and model_input.ndim == 4:
        items = list(model_input)
    elif isinstance(model_input, np.ndarray) and model_input.ndim == 3:
        items = [model_input]
    elif isinstance(model_input, (list, tuple)):
        items, paths = list(model_input), True
    else:
        items = [model_input]
    return [_decode(item, row, max_pixels, paths) for row, item in enumerate(items)]


def _rle(masks: np.ndarray) -> list[dict]:
    """(N, H, W) bool -> COCO RLE dicts with str counts (JSON-safe)."""
    from pycocotools import mask as mask_utils

    if masks.size == 0:
        return []
    encoded = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}
            for r in encoded]


def _as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _format(pred: dict, classes: list[str] | None) -> dict:
    """Arrays ``boxes`` (N,4), ``labels`` (N,), ``scores`` (N,), optional ``masks`` (N,H,W)."""
    labels = [int(v) for v in _as_numpy(pred["labels"]).reshape(-1)]
    out = {
        "boxes": _as_numpy(pred["boxes"]).reshape(-1, 4).astype(float).tolist(),
        "labels": labels,
        "scores": _as_numpy(pred["scores"]).reshape(-1).astype(float).tolist(),
        "masks": _rle(_as_numpy(pred["masks"]).astype(bool)) if pred.get("masks") is not None else [],
    }
    if classes:
        out["label_names"] = [classes[i] if 0 <= i < len(classes) else str(i) for i in labels]
    return out


class DetectorPyFunc(mlflow.pyfunc.PythonModel):
    """Rebuilds the detector from (config, safetensors weights); see the module docstring.

    ``model_config`` keys: ``builder`` ("module:function" taking the config path and
    returning an ``nn.Module``; default :data:`DEFAULT_BUILDER`), ``device`` ("cpu" default,
    "cuda", or "auto"), ``score_threshold`` (drop detections below it; default 0.0),
    ``max_pixels`` (largest image accepted, width x height; default :data:`MAX_PIXELS`).
    Override at load time: ``mlflow.pyfunc.load_model(uri, model_config={"device": "cuda"})``.

    A built module that defines ``predict_images(list of HxWx3 uint8 BGR arrays) -> list of
    {"boxes","labels","scores"[,"masks"]}`` is called directly; any other module is treated as
    an mmdet detector and run with ``mmdet.apis.inference_detector``.

    ``predict`` has no input type hint on purpose (MLflow then warns once at import): a hint
    makes MLflow validate/convert inputs, and no supported hint describes "list of arrays |
    list of paths | DataFrame".
    """

    def load_context(self, context) -> None:
        import torch
        from safetensors.torch import load_file

        cfg = dict(context.model_config or {})
        config_path = context.artifacts["config"]
        builder = _resolve(cfg.get("builder") or DEFAULT_BUILDER)
        device = cfg.get("device", "cpu")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = builder(config_path)
        model.load_state_dict(load_file(context.artifacts["weights"], device="cpu"), strict=True)
        self.model = model.to(device).eval()
        self.score_threshold = float(cfg.get("score_threshold", 0.0))
        self.max_pixels = int(cfg.get("max_pixels", MAX_PIXELS))
        self.classes: list[str] | None = None
        if not hasattr(model, "predict_images"):
            self._prepare_mmdet(config_path)

    def _prepare_mmdet(self, config_path: str) -> None:
        """``inference_detector`` needs ``model.cfg`` (its test pipeline), the registry scope,
        and ``model.dataset_meta`` for class names; a model built from a config without a
        checkpoint may have none of them (``build_detector`` sets the first and last)."""
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        cfg = getattr(self.model, "cfg", None)
        if cfg is None:
            cfg = self.model.cfg = Config.fromfile(config_path)
        init_default_scope(cfg.get("default_scope", "mmdet"))
        meta = dict(getattr(self.model, "dataset_meta", None) or {})
        if not meta.get("classes"):
            test_ds = (cfg.get("test_dataloader") or {}).get("dataset") or {}
            meta.update(dict(cfg.get("metainfo") or test_ds.get("metainfo") or {}))
        self.model.dataset_meta = meta
        classes = meta.get("classes")
        self.classes = list(classes) if classes else None

    def predict(self, context, model_input, params=None) -> list[dict]:
        import torch

        images = _images(model_input, getattr(self, "max_pixels", MAX_PIXELS))
        if not images:
            return []
        with torch.no_grad():
            if hasattr(self.model, "predict_images"):
                raw = list(self.model.predict_images(images))
            else:
                raw = self._mmdet_predict(images)
        outs = []
        for pred in raw:
            keep = _as_numpy(pred["scores"]).reshape(-1) >= self.score_threshold
            pred = {k: (None if v is None else _as_numpy(v)[keep]) for k, v in pred.items()}
            outs.append(_format(pred, self.classes))
        return outs

    def _mmdet_predict(self, images: list[np.ndarray]) -> list[dict]:
        from mmdet.apis import inference_detector

        results = inference_detector(self.model, images)
        out = []
        for sample in results:
            inst = sample.pred_instances
            out.append({"boxes": inst.bboxes, "labels": inst.labels, "scores": inst.scores,
                        "masks": inst.masks if "masks" in inst else None})
        return out


def pinned_requirements(names: tuple[str, ...] = REQUIREMENTS) -> list[str]:
    """``name==version`` for each installed distribution (skips absent ones).

    Why explicit: MLflow's requirement inference imports the model and took 9-11 s per
    ``log_model`` here; the pins are the versions this model was trained and tested with.
    """
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def signature() -> "mlflow.models.ModelSignature":
    """The request contract as an MLflow signature: one ``image`` column of binary (JPEG/PNG)
    values, which MLflow's REST protocol carries as base64 text."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    return ModelSignature(inputs=Schema([ColSpec(DataType.binary, "image")]))


def log_detector_model(config_path: str | Path, weights_path: str | Path, *,
                       name: str | None = None, artifact_path: str = "model",
                       builder: str = DEFAULT_BUILDER, model_config: dict | None = None,
                       include_code: bool = True, input_example: bytes | None = None
                       ) -> "mlflow.models.model.ModelInfo":
    """Log (config, weights) as a pyfunc model in the active run (start one first).

    Args:
        config_path: the mmengine config ``.py`` the detector was trained with (self-contained
            or inheriting only ``mmdet::`` bases; local ``_base_`` files are not copied).
        weights_path: ``.safetensors`` state dict of that detector.
        name: logged-model name (MLflow 3 ``name``); defaults to ``artifact_path``.
        builder: "module:function" that rebuilds the network from the config path.
        model_config: extra ``DetectorPyFunc`` settings (``device``, ``score_threshold``,
            ``max_pixels``).
        include_code: copy ``components/`` into the model (``code_paths``).
        input_example: one encoded JPEG/PNG image saved as the model's input example (MLflow
            checks at log time that the model predicts it, and the UI shows it).

    Returns MLflow's ``ModelInfo``; register ``info.model_uri``. Nothing is registered here.
    """
    config_path, weights_path = Path(config_path), Path(weights_path)
    if not config_path.is_file():
        raise FileNotFoundError(f"model config not found: {config_path}")
    if weights_path.suffix != ".safetensors" or not weights_path.is_file():
        raise FileNotFoundError(
            f"weights must be an existing .safetensors state dict, got {weights_path} "
            "(export with safetensors.torch.save_file(model.state_dict(), path))"
        )
    with tempfile.TemporaryDirectory(prefix="vitdet-model-") as tmp:
        code_paths = None
        if include_code:
            dst = Path(tmp) / "components"
            shutil.copytree(PROJECT_ROOT / "components", dst,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
            code_paths = [str(dst)]
        return mlflow.pyfunc.log_model(
            name=name or artifact_path,
            python_model=str(ENTRY_FILE),
            artifacts={"config": str(config_path), "weights": str(weights_path)},
            model_config={"builder": builder, "device": "cpu", "score_threshold": 0.0,
                          "max_pixels": MAX_PIXELS, **(model_config or {})},
            code_paths=code_paths,
            pip_requirements=pinned_requirements(),
            signature=signature(),
            input_example=(None if input_example is None
                           else _example_frame(input_example)),
        )


def _example_frame(data: bytes):
    import pandas as pd

    check_image_bytes(data, 0)
    return pd.DataFrame({"image": [data]})
