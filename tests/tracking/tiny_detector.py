"""A test-only 'detector' for the pyfunc round trip (the real one needs mmdet + training).

It honours the ``predict_images`` contract of ``DetectorPyFunc``: one box covering the top-left
quarter of each image, scored from the image's mean colour through a tiny linear layer, and the
matching mask, so outputs depend on both the weights and the input.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TinyDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(3, 1)
        self.label = nn.Parameter(torch.tensor(2.0))

    def predict_images(self, images: list[np.ndarray]) -> list[dict]:
        out = []
        for img in images:  # HxWx3 uint8 BGR
            h, w, _ = img.shape
            mean = torch.as_tensor(img.reshape(-1, 3).mean(0) / 255.0, dtype=torch.float32)
            score = torch.sigmoid(self.score(mean)).reshape(1)
            mask = np.zeros((1, h, w), bool)
            mask[0, : h // 2, : w // 2] = True
            out.append({"boxes": torch.tensor([[0.0, 0.0, w / 2, h / 2]]),
                        "labels": self.label.detach().round().long().reshape(1),
                        "scores": score, "masks": mask})
        return out


def build(config_path: str) -> TinyDetector:
    torch.manual_seed(0)
    return TinyDetector()
