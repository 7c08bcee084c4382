"""Export a registered detector for deployment: ONNX (opset >= 17) with a round-trip check.

``python -m components.export --model models:/vitdet-ssdlite@champion --out exports/ssdlite.onnx``
(see :mod:`components.export.onnx`). Mobile deployment is the point of MobileViT, so the
SSDLite champion must leave PyTorch: the exported graph is the network up to its raw head
outputs (per-level class scores and box deltas at a fixed square input); anchor decoding and
NMS stay outside it, exactly the part every runtime re-implements with its own NMS op.
"""
from components.export.onnx import ExportReport, export_onnx, load_champion, verify_onnx

__all__ = ["ExportReport", "export_onnx", "load_champion", "verify_onnx"]
