"""The Newton solver behind both BING stages."""
from __future__ import annotations

import numpy as np
import pytest

from components.proposals.linear import fit_linear


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_separates_linearly_separable_data(loss: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    true_w = np.array([2.0, -1.0, 0.5, 0.0, 1.0])
    y = np.where(X @ true_w + 0.3 > 0, 1, -1)
    w, b = fit_linear(X, y, C=10.0, loss=loss)
    assert np.mean(np.sign(X @ w + b) == y) > 0.97
    cos = w @ true_w / np.linalg.norm(w) / np.linalg.norm(true_w)
    assert cos > 0.95


def test_logistic_bias_follows_the_class_prior() -> None:
    """1-D calibration: the same scores with more positives give a larger bias."""
    rng = np.random.default_rng(1)
    s = rng.normal(size=2000)
    few = (s + rng.normal(size=2000) > 2.0).astype(int)
    many = (s + rng.normal(size=2000) > 0.0).astype(int)
    (v1,), t1 = fit_linear(s[:, None], few, C=10.0, loss="logistic")
    (v2,), t2 = fit_linear(s[:, None], many, C=10.0, loss="logistic")
    assert v1 > 0 and v2 > 0 and t2 > t1


def test_rejects_a_single_class_and_unknown_losses() -> None:
    with pytest.raises(ValueError, match="both positive and negative"):
        fit_linear(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="loss must be"):
        fit_linear(np.ones((2, 2)), np.array([1, -1]), loss="hinge")
