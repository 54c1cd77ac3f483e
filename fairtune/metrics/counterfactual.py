"""Counterfactual consistency: how often and how much a prediction moves when only a protected attribute is swapped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_probs(p: Any) -> np.ndarray:
    """(n,) positive-class probabilities or (n, k) class probabilities -> (n, k) array."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim == 1:
        arr = np.stack([1.0 - arr, arr], axis=1)
    if arr.ndim != 2:
        raise ValueError(f"expected (n,) or (n, k) probabilities, got shape {arr.shape}")
    return arr


def flip_rate(probs_original: Any, probs_counterfactual: Any) -> float:
    """Fraction of pairs whose predicted class (argmax) differs between original and counterfactual."""
    a, b = _as_probs(probs_original), _as_probs(probs_counterfactual)
    if len(a) == 0:
        return float("nan")
    return float(np.mean(a.argmax(1) != b.argmax(1)))


def ctf_gap(probs_original: Any, probs_counterfactual: Any) -> float:
    """Mean absolute change of the probability of the class predicted on the original input.

    For binary classifiers this is the mean |p(positive | x) - p(positive | x')|.
    """
    a, b = _as_probs(probs_original), _as_probs(probs_counterfactual)
    if len(a) == 0:
        return float("nan")
    cls = a.argmax(1)
    rows = np.arange(len(a))
    return float(np.mean(np.abs(a[rows, cls] - b[rows, cls])))


def counterfactual_consistency(
    probs_original: Any, probs_counterfactual: Any, axes: Sequence[str] | None = None
) -> dict[str, Any]:
    """`flip_rate` and `ctf_gap` overall, and per axis (keys `flip_rate_<axis>`, `ctf_gap_<axis>`) when given."""
    a, b = _as_probs(probs_original), _as_probs(probs_counterfactual)
    out: dict[str, Any] = {"flip_rate": flip_rate(a, b), "ctf_gap": ctf_gap(a, b), "counterfactual_pairs": int(len(a))}
    if axes is not None:
        axes_arr = np.asarray(list(axes), dtype=object)
        for axis in dict.fromkeys(axes_arr.tolist()):
            m = axes_arr == axis
            out[f"flip_rate_{axis}"] = flip_rate(a[m], b[m])
            out[f"ctf_gap_{axis}"] = ctf_gap(a[m], b[m])
            out[f"counterfactual_pairs_{axis}"] = int(m.sum())
    return out
