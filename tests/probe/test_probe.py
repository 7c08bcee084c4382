"""The shared linear probe: AP, mAP, logistic regression, frozen-backbone features."""
from __future__ import annotations

import math

import pytest
import torch

from components.probe import (average_precision, extract_features, fit_linear_probe,
                              mean_average_precision, top1_accuracy)


def test_average_precision_matches_a_hand_computed_ranking():
    # ranking: pos, neg, pos, neg -> precisions at the positives 1/1 and 2/3
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1])
    targets = torch.tensor([1, 0, 1, 0])
    assert average_precision(scores, targets) == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(average_precision(scores, torch.zeros(4)))


def test_mean_average_precision_skips_classes_without_positives():
    scores = torch.tensor([[0.9, 0.2], [0.1, 0.3]])
    targets = torch.tensor([[1, 0], [0, 0]])
    m, per = mean_average_precision(scores, targets)
    assert m == pytest.approx(1.0) and math.isnan(per[1])


def test_probe_separates_linearly_separable_multilabel_and_multiclass_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    y_multi = torch.stack([(x[:, 0] > 0), (x[:, 1] + x[:, 2] > 0)], dim=1).float()
    probe = fit_linear_probe(x, y_multi, multilabel=True, weight_decay=1e-4)
    m, _ = mean_average_precision(probe.scores(x), y_multi)
    assert m > 0.97
    labels = (x[:, 3] > 0).long() + 2 * (x[:, 4] > 0).long()
    probe = fit_linear_probe(x, labels, multilabel=False, weight_decay=1e-4)
    assert top1_accuracy(probe.scores(x), labels) > 0.95
    assert probe.scores(x).sum(dim=1).allclose(torch.ones(200))


def test_probe_is_deterministic_and_rejects_empty_features():
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    a = fit_linear_probe(x, y, multilabel=False, num_classes=3)
    b = fit_linear_probe(x, y, multilabel=False, num_classes=3)
    assert torch.equal(a.linear.weight, b.linear.weight)
    with pytest.raises(ValueError, match="N > 0"):
        fit_linear_probe(torch.zeros(0, 4), torch.zeros(0), multilabel=False, num_classes=2)


def test_extract_features_gives_one_pooled_embedding_per_image_and_restores_mode():
    from PIL import Image

    from components.pretrain.common import build_backbone

    backbone = build_backbone("tiny", 64, arch={"embed_dim": 32, "depth": 2, "num_heads": 2})
    backbone.train()
    imgs = [Image.new("RGB", (80, 60), (i * 40, 0, 0)) for i in range(3)]
    feats = extract_features(backbone, imgs, 64, batch_size=2)
    assert feats.shape == (3, 32) and backbone.training
    assert not torch.allclose(feats[0], feats[2])
