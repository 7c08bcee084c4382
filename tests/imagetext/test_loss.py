"""UniCL loss: a hand-computed case, the exact CLIP reduction, label-aware positives."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from components.imagetext.loss import positive_mask, unicl_loss


def test_hand_computed_3x3():
    # u = v = identity, tau = exp(0) = 1 -> logits = I; labels [0, 0, 1]: P(0) = P(1) = {0, 1}.
    # rows 0, 1: -(log(e / (e + 2)) + log(1 / (e + 2))) / 2 = log(e + 2) - 1/2
    # row 2:     -log(e / (e + 2))                          = log(e + 2) - 1
    # i2t = t2i (symmetric logits) = mean = log(e + 2) - 2/3
    eye = torch.eye(3)
    out = unicl_loss(eye, eye, torch.tensor([0, 0, 1]), 0.0)
    expected = math.log(math.e + 2) - 2 / 3
    assert abs(out["loss"].item() - expected) < 1e-6
    assert abs(out["loss_i2t"].item() - out["loss_t2i"].item()) < 1e-6


def test_hand_computed_asymmetric_directions():
    # u rows e0, e1, e0; v = I; tau = 1; labels all distinct (CLIP):
    # logits rows: [1,0,0], [0,1,0], [1,0,0]; log Z_row = log(e + 2) for every row
    # i2t = mean(log(e+2) - 1, log(e+2) - 1, log(e+2) - 0) = log(e+2) - 2/3
    # columns: [1,0,1], [0,1,0], [0,0,0]; log Z = log(2e+1), log(e+2), log 3
    # t2i = mean(log(2e+1) - 1, log(e+2) - 1, log 3 - 0)
    u = torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 0, 0]])
    out = unicl_loss(u, torch.eye(3), torch.arange(3), 0.0)
    e = math.e
    i2t = math.log(e + 2) - 2 / 3
    t2i = (math.log(2 * e + 1) - 1 + math.log(e + 2) - 1 + math.log(3)) / 3
    assert abs(out["loss_i2t"].item() - i2t) < 1e-6
    assert abs(out["loss_t2i"].item() - t2i) < 1e-6
    assert abs(out["loss"].item() - (i2t + t2i) / 2) < 1e-6


def test_reduces_to_clip_when_every_pair_is_its_own_class():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    scale = math.log(1 / 0.07)
    logits = math.exp(scale) * F.normalize(img, dim=1) @ F.normalize(txt, dim=1).t()
    target = torch.arange(6)
    clip = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    out = unicl_loss(img, txt, torch.tensor([5, 3, 9, 0, 1, 2]), scale)  # any distinct ids
    assert torch.allclose(out["loss"], clip, atol=1e-5)


def test_pairs_sharing_a_label_are_interchangeable_positives():
    # Swap the texts of pairs 0 and 1: under UniCL (same label) nothing changes, under CLIP
    # (own labels) the loss rises, since each image now sits on the other pair's text.
    g = torch.Generator().manual_seed(1)
    img = torch.randn(4, 8, generator=g)
    txt = img + 0.1 * torch.randn(4, 8, generator=g)
    swapped = txt[[1, 0, 2, 3]]
    labels = torch.tensor([7, 7, 1, 2])
    same = unicl_loss(img, txt, labels, 2.0)["loss"]
    assert torch.allclose(unicl_loss(img, swapped, labels, 2.0)["loss"], same, atol=1e-6)
    own = torch.arange(4)
    assert unicl_loss(img, swapped, own, 2.0)["loss"] > unicl_loss(img, txt, own, 2.0)["loss"] + 0.1


def test_positive_mask_and_temperature_cap():
    mask = positive_mask(torch.tensor([0, 1, 0]))
    assert mask.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    out = unicl_loss(torch.eye(2), torch.eye(2), torch.arange(2), math.log(1000.0))
    assert abs(out["tau"].item() - 100.0) < 1e-3
