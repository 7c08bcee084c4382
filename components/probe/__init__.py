"""Frozen-backbone transfer: features, a linear probe, and the scores papers report.

Why one shared module: the object-aware-cropping paper reads its pretrainings by a multi-label
linear probe (mAP), Florence by linear probe and few-shot accuracy; both freeze the image tower
and fit a linear classifier on its global embedding (the backbone contract's
``pooled_features``). One implementation keeps their numbers comparable.

Torch only (no scikit-learn): logistic regression on a few thousand standardised embeddings is
one full-batch L-BFGS problem, solved in seconds, deterministically.
"""
from components.probe.features import extract_features
from components.probe.linear import LinearProbe, fit_linear_probe
from components.probe.metrics import average_precision, mean_average_precision, top1_accuracy

__all__ = ["extract_features", "LinearProbe", "fit_linear_probe", "average_precision",
           "mean_average_precision", "top1_accuracy"]
