"""Setup self-check: the compiled mmcv ops and the registries we depend on actually run."""
from __future__ import annotations

import sys


def main() -> int:
    import torch
    from mmcv.ops import RoIAlign, nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2], f"mmcv.ops.nms kept {keep.tolist()}, expected [0, 2]"
    feat = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8)
    rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float32)
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feat, rois)
    assert out.shape == (1, 1, 2, 2) and torch.isfinite(out).all()
    import mmdet  # noqa: F401  (mmdet imports mmcv and asserts its version range)

    print(f"[selfcheck] ok: torch {torch.__version__}, mmcv.ops nms+RoIAlign, mmdet {mmdet.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
