"""Inferred groups: predict the group from a frozen representation when it is unknown at inference time.

Deployed models rarely see the protected attribute. As OxonFair's inferred groups do, a small logistic-regression
probe on the representation feeding the task head predicts the group, and the predicted group's thresholds are
applied. The probe is stored as plain numbers (standardisation + weights) in the thresholds JSON, and its held-out
accuracy is reported next to the fairness it buys: a probe near the majority baseline buys nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fit_group_probe(
    representations: np.ndarray, groups: np.ndarray, *, seed: int = 0, c: float = 1.0, folds: int = 5
) -> dict[str, Any]:
    """A logistic-regression group predictor as a JSON-able dict, with its cross-validated accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(representations, dtype=float)
    g = np.asarray([str(v) for v in groups], dtype=object)
    if x.ndim != 2 or len(x) != len(g):
        raise ValueError(f"representations must be [N, D] with one group per row, got {x.shape} and {len(g)} groups")
    classes, counts = np.unique(g, return_counts=True)
    if len(classes) < 2:
        raise ValueError("the group probe needs at least two groups in the fitting data")
    make = lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=c))  # noqa: E731
    n_splits = int(min(folds, counts.min()))
    cv_acc = (
        float(cross_val_score(make(), x, g, cv=StratifiedKFold(n_splits, shuffle=True, random_state=seed)).mean())
        if n_splits >= 2
        else float("nan")
    )
    model = make().fit(x, g)
    scaler, lr = model.steps[0][1], model.steps[1][1]
    return {
        "classes": [str(v) for v in lr.classes_],
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": lr.coef_.tolist(),
        "intercept": lr.intercept_.tolist(),
        "cv_accuracy": cv_acc,
        "majority_baseline": float(counts.max() / counts.sum()),
    }


def predict_group(probe: dict[str, Any], representations: np.ndarray) -> np.ndarray:
    """The probe's predicted group name for each row."""
    x = (np.asarray(representations, dtype=float) - np.asarray(probe["mean"])) / np.asarray(probe["scale"])
    z = x @ np.asarray(probe["coef"]).T + np.asarray(probe["intercept"])
    classes = np.asarray(probe["classes"], dtype=object)
    if z.shape[1] == 1:  # binary logistic regression: one column, positive = classes[1]
        return classes[(z[:, 0] > 0).astype(int)]
    return classes[z.argmax(1)]
