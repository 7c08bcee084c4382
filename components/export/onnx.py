"""ONNX export of an mmdet detector's network + the check that ONNX Runtime computes the same.

Why raw head outputs: mmdet's ``predict`` ends in data-dependent Python (score filtering, NMS,
rescaling) that no exporter turns into one static graph; ``model._forward`` (mmdet's "tensor"
mode) is the whole learned network: backbone, neck and head, one ``(B, A*K, h, w)`` score map
and one ``(B, A*4, h, w)`` box-delta map per level. The export takes a fixed ``S x S`` input
(the model's test size, letterboxed); :func:`verify_onnx` runs both runtimes on real test
images and compares (1) every raw output and (2) the final detections, which it decodes from
either runtime's outputs with the model's own ``bbox_head.predict_by_feat``.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript, the maintained
path), opset 18 by default.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["RawNetwork", "ExportReport", "load_champion", "test_size", "letterbox",
           "export_onnx", "latency_ms", "onnx_opset", "verify_onnx"]

DEFAULT_OPSET = 18


class RawNetwork(nn.Module):
    """``image (B, 3, S, S) normalised -> (scores per level..., box deltas per level...)``."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = self.detector._forward(image)
        if not (isinstance(outs, tuple) and len(outs) == 2 and all(
                isinstance(o, (list, tuple)) for o in outs)):
            raise TypeError(f"{type(self.detector).__name__}._forward does not return "
                            "(scores per level, boxes per level); only single-stage detectors "
                            "(model.detector: ssdlite) export")
        scores, boxes = outs
        return (*scores, *boxes)


@dataclass
class ExportReport:
    onnx_path: str
    opset: int
    input_size: int
    outputs: int
    file_mib: float
    images: int
    max_abs_diff: float                 # largest |torch - onnxruntime| over every raw output
    detections_compared: int
    max_box_diff_px: float              # largest box-corner difference of matched detections
    max_score_diff: float
    same_labels: bool
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # runtime -> p50/p95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_champion(model_uri: str) -> tuple[nn.Module, Any]:
    """(the mmdet detector in eval mode, its config) of a registered MLflow model."""
    import mlflow

    python_model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    detector = python_model.model
    return detector.eval(), detector.cfg


def test_size(cfg: Any) -> int:
    """The square side the model is tested at (its test pipeline's ``Resize`` scale)."""
    for t in cfg.test_dataloader.dataset.pipeline:
        if t["type"] == "Resize":
            scale = t["scale"]
            return int(max(scale) if isinstance(scale, (list, tuple)) else scale)
    raise ValueError("the model's test pipeline has no Resize: pass --size")


def letterbox(bgr: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]
              ) -> tuple[torch.Tensor, float]:
    """BGR uint8 image -> normalised RGB ``(1, 3, size, size)`` (longer side = ``size``,
    zero padding bottom/right, as mmdet pads a normalised batch), and the resize factor."""
    import cv2

    h, w = bgr.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_LINEAR)
    rgb = resized[:, :, ::-1].astype(np.float32)
    rgb = (rgb - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    out = np.zeros((size, size, 3), np.float32)
    out[:rgb.shape[0], :rgb.shape[1]] = rgb
    return torch.from_numpy(out).permute(2, 0, 1)[None].contiguous(), scale


def _normalisation(detector: nn.Module) -> tuple[list[float], list[float]]:
    pre = detector.data_preprocessor
    return pre.mean.flatten().tolist(), pre.std.flatten().tolist()


def export_onnx(detector: nn.Module, path: str | Path, size: int, *,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write ``detector``'s network (:class:`RawNetwork`) for a ``size`` x ``size`` input."""
    if opset < 17:
        raise ValueError(f"opset {opset}: use 17 or newer (LayerNormalization is opset 17)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = RawNetwork(detector).eval()
    example = torch.zeros(1, 3, size, size)
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad():
        program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset,
                                    input_names=["image"], verbose=False)
    program.save(str(tmp))
    tmp.replace(path)  # never leave a half-written model under the final name
    return path


def _detections(detector: nn.Module, outs: Sequence[torch.Tensor], size: int) -> Any:
    levels = len(outs) // 2
    meta = [{"img_shape": (size, size), "ori_shape": (size, size), "scale_factor": (1.0, 1.0),
             "pad_shape": (size, size)}]
    (result,) = detector.bbox_head.predict_by_feat(list(outs[:levels]), list(outs[levels:]),
                                                   batch_img_metas=meta, rescale=False)
    return result


def onnx_opset(path: str | Path) -> int:
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def latency_ms(fn, runs: int, warmup: int = 1) -> dict[str, float]:
    """p50 / p95 milliseconds of ``fn()`` over ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return {"p50": round(statistics.median(times), 2),
            "p95": round(times[min(len(times) - 1, int(0.95 * (len(times) - 1) + 0.5))], 2),
            "runs": runs}


def verify_onnx(detector: nn.Module, onnx_path: str | Path, images: Sequence[str | Path],
                size: int, *, runs: int = 20, threads: int = 0) -> ExportReport:
    """Run PyTorch and ONNX Runtime on ``images``; compare raw outputs and detections."""
    import cv2
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    net = RawNetwork(detector).eval()
    mean, std = _normalisation(detector)
    max_diff, box_diff, score_diff, compared, same_labels = 0.0, 0.0, 0.0, 0, True
    batch = None
    for image in images:
        bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{image}: not a readable image")
        batch, _ = letterbox(bgr, size, mean, std)
        with torch.no_grad():
            ref = net(batch)
        got = [torch.from_numpy(o) for o in session.run(None, {name: batch.numpy()})]
        if len(got) != len(ref):
            raise AssertionError(f"ONNX model returns {len(got)} outputs, PyTorch {len(ref)}")
        max_diff = max(max_diff, *(float((g - r).abs().max()) for g, r in zip(got, ref)))
        with torch.no_grad():
            a, b = _detections(detector, ref, size), _detections(detector, got, size)
        n = min(len(a.scores), len(b.scores))
        compared += n
        if n:
            box_diff = max(box_diff, float((a.bboxes[:n] - b.bboxes[:n]).abs().max()))
            score_diff = max(score_diff, float((a.scores[:n] - b.scores[:n]).abs().max()))
            same_labels &= bool(torch.equal(a.labels[:n], b.labels[:n]))
        same_labels &= len(a.scores) == len(b.scores)
    if batch is None:
        raise ValueError("verify_onnx needs at least one image")
    feed = {name: batch.numpy()}
    with torch.no_grad():
        latency = {"pytorch": latency_ms(lambda: net(batch), runs),
                   "onnxruntime": latency_ms(lambda: session.run(None, feed), runs)}
    path = Path(onnx_path)
    return ExportReport(
        onnx_path=str(path), opset=onnx_opset(path),
        input_size=size, outputs=len(session.get_outputs()),
        file_mib=round(path.stat().st_size / 2**20, 3), images=len(images),
        max_abs_diff=max_diff, detections_compared=compared, max_box_diff_px=box_diff,
        max_score_diff=score_diff, same_labels=same_labels, latency_ms=latency)
