"""A small primal Newton solver for L2-regularised linear classifiers (numpy only).

Why our own: BING's two stages are a 64-D and a 1-D linear classifier. Both fit in
milliseconds with a few Newton steps on the primal, so the project needs no scikit-learn.

Objective, for ``X (N, D)``, labels ``y in {-1, +1}`` and a bias that is not regularised::

    0.5 * |w|^2 + C * sum_i loss(y_i * (x_i . w + b))

``loss`` is ``squared_hinge`` (``max(0, 1 - m)^2``: the L2-SVM of liblinear, BING's stage I) or
``logistic`` (``log(1 + exp(-m))``: calibrated log-odds, our stage II). Both are smooth enough
for Newton's method with a backtracking line search.
"""
from __future__ import annotations

import numpy as np

__all__ = ["fit_linear"]

_LOSSES = ("squared_hinge", "logistic")


def _objective(theta: np.ndarray, Xb: np.ndarray, y: np.ndarray, C: float, reg: np.ndarray,
               loss: str) -> tuple[float, np.ndarray, np.ndarray]:
    """(value, gradient, per-sample curvature weights) at ``theta``."""
    m = y * (Xb @ theta)
    if loss == "squared_hinge":
        slack = np.maximum(0.0, 1.0 - m)
        value = C * float(slack @ slack)
        grad = -2.0 * C * (Xb.T @ (y * slack))
        curv = 2.0 * C * (slack > 0)
    else:
        value = C * float(np.logaddexp(0.0, -m).sum())
        p = np.exp(-np.logaddexp(0.0, m))           # sigmoid(-m), stable
        grad = -C * (Xb.T @ (y * p))
        curv = C * p * (1.0 - p)
    value += 0.5 * float((reg * theta) @ theta)
    grad += reg * theta
    return value, grad, curv


def fit_linear(X: np.ndarray, y: np.ndarray, *, C: float = 1.0, loss: str = "squared_hinge",
               max_iter: int = 50, tol: float = 1e-6) -> tuple[np.ndarray, float]:
    """Fit ``(w (D,), b)``; ``X (N, D)`` float, ``y (N,)`` in {-1, +1} (or {0, 1}).

    Deterministic (no sampling). Raises ValueError when ``y`` holds a single class.
    """
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    X = np.asarray(X, dtype=np.float64)
    y = np.where(np.asarray(y).ravel() > 0, 1.0, -1.0)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (N, D) with N = len(y); got {X.shape} and {y.shape}")
    if len(np.unique(y)) < 2:
        raise ValueError("fit_linear needs both positive and negative samples")
    Xb = np.hstack([X, np.ones((len(X), 1))])
    reg = np.ones(Xb.shape[1])
    reg[-1] = 0.0                                    # the bias is not regularised
    theta = np.zeros(Xb.shape[1])
    value, grad, curv = _objective(theta, Xb, y, C, reg, loss)
    for _ in range(max_iter):
        hess = (Xb * curv[:, None]).T @ Xb + np.diag(reg) + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hess, grad)
        decrease = float(grad @ step)
        if decrease <= tol * max(1.0, abs(value)):
            break
        t = 1.0
        while True:                                  # Armijo backtracking
            cand = theta - t * step
            new_value, new_grad, new_curv = _objective(cand, Xb, y, C, reg, loss)
            if new_value <= value - 1e-4 * t * decrease or t < 1e-8:
                break
            t *= 0.5
        theta, value, grad, curv = cand, new_value, new_grad, new_curv
    return theta[:-1].copy(), float(theta[-1])
