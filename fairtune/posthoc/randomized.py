"""Randomized per-group thresholds (Hardt, Price & Srebro 2016), the construction fairlearn's ThresholdOptimizer uses.

Each group gets a rule that mixes two thresholds (and, for equalized odds, a constant coin flip):

    P(y_hat = 1 | s) = (1 - p_ignore) * (p_first * [s >= t_first] + (1 - p_first) * [s >= t_second])
                       + p_ignore * constant

Mixing two thresholds reaches every point of the convex hull of a group's operating points, so the constraint
holds exactly in expectation on the fitting data:
- `demographic_parity` / `equal_opportunity`: one shared selection rate / TPR x for every group; each group takes
  the most accurate mix at x (upper concave hull of accuracy against x), and x maximises the total.
- `equalized_odds`: one shared (FPR, TPR) point. Each group's ROC hull is intersected with the others' (the
  pointwise minimum of the upper hulls); a group above the shared TPR mixes in the diagonal point
  (constant coin flip with probability FPR), as fairlearn's `p_ignore` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RANDOMIZED_CRITERIA = ("demographic_parity", "equal_opportunity", "equalized_odds")


def upper_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the upper concave hull of the points (x, y), sorted by x (Andrew's monotone chain)."""
    order = np.lexsort((-y, x))
    hull: list[int] = []
    for i in order:
        if hull and x[hull[-1]] == x[i]:
            continue  # same x: the first (highest y) is kept
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross >= 0:  # b lies on or below the segment a-i
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.asarray(hull, dtype=int)


def _on_hull(hx: np.ndarray, hy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hull value at each x, the left vertex index and the weight of the left vertex (1 at the vertex itself)."""
    x = np.clip(x, hx[0], hx[-1])
    j = np.clip(np.searchsorted(hx, x, side="left"), 1, max(len(hx) - 1, 1))
    if len(hx) == 1:
        return np.full_like(x, hy[0], dtype=float), np.zeros(len(x), dtype=int), np.ones(len(x))
    i = j - 1
    span = hx[j] - hx[i]
    w_right = np.where(span > 0, (x - hx[i]) / np.where(span > 0, span, 1.0), 0.0)
    return hy[i] * (1 - w_right) + hy[j] * w_right, i, 1 - w_right


def _operating_points(s: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Rates and correct (weighted) counts for every threshold `s >= t` over the unique scores, plus one above all."""
    cand = np.concatenate([np.unique(s), [float(s.max()) + 1.0]])
    pred = s[None, :] >= cand[:, None]
    pos, neg = w * (y == 1), w * (y == 0)
    n_pos, n_neg, n = pos.sum(), neg.sum(), w.sum()
    tp, fp = pred @ pos, pred @ neg
    return {
        "threshold": cand,
        "selection": (pred @ w) / n,
        "tpr": tp / n_pos if n_pos > 0 else np.zeros(len(cand)),
        "fpr": fp / n_neg if n_neg > 0 else np.zeros(len(cand)),
        "correct": tp + (n_neg - fp),
        "n_pos": np.asarray(n_pos),
        "n_neg": np.asarray(n_neg),
    }


def fit_randomized(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    names: list[str],
    criterion: str,
    *,
    sample_weight: np.ndarray | None = None,
    grid_size: int = 1000,
) -> dict[str, Any]:
    """Per-group randomized rules (see the module docstring) maximising accuracy under `criterion`."""
    if criterion not in RANDOMIZED_CRITERIA:
        raise ValueError(f"criterion must be one of {RANDOMIZED_CRITERIA}, got {criterion!r}")
    w = np.ones(len(scores)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    points = {k: _operating_points(scores[groups == k], labels[groups == k], w[groups == k]) for k in names}
    grid = np.linspace(0.0, 1.0, grid_size + 1)
    rules: dict[str, dict[str, float]] = {}
    if criterion == "equalized_odds":
        hulls = {}
        for k, pt in points.items():
            fx, ty = np.concatenate([pt["fpr"], [0.0, 1.0]]), np.concatenate([pt["tpr"], [0.0, 1.0]])
            h = upper_hull(fx, ty)
            hulls[k] = (fx[h], ty[h], h)
        shared = np.min([_on_hull(hx, hy, grid)[0] for hx, hy, _ in hulls.values()], axis=0)
        n_pos = sum(float(p["n_pos"]) for p in points.values())
        n_neg = sum(float(p["n_neg"]) for p in points.values())
        best = int(np.argmax(shared * n_pos + (1 - grid) * n_neg))
        f_star, t_star = float(grid[best]), float(shared[best])
        for k, (hx, hy, h) in hulls.items():
            u, i, p_left = (v[0] for v in _on_hull(hx, hy, np.asarray([f_star])))
            thr = np.concatenate([points[k]["threshold"], [np.inf, -np.inf]])  # hull extras: (0,0) and (1,1)
            p_ignore = float((u - t_star) / (u - f_star)) if u - f_star > 1e-12 else 0.0
            rules[k] = _rule(thr[h[i]], thr[h[min(i + 1, len(h) - 1)]], p_left, p_ignore, f_star)
        return {"rules": rules, "operating_point": {"fpr": f_star, "tpr": t_star}}
    stat = "selection" if criterion == "demographic_parity" else "tpr"
    total = np.zeros_like(grid)
    hulls = {}
    for k, pt in points.items():
        h = upper_hull(pt[stat], pt["correct"])
        hulls[k] = (pt[stat][h], pt["correct"][h], h)
        total += _on_hull(*hulls[k][:2], grid)[0]
    x_star = float(grid[int(np.argmax(total))])
    for k, (hx, hy, h) in hulls.items():
        _, i, p_left = (v[0] for v in _on_hull(hx, hy, np.asarray([x_star])))
        thr = points[k]["threshold"]
        rules[k] = _rule(thr[h[i]], thr[h[min(i + 1, len(h) - 1)]], p_left, 0.0, 0.0)
    return {"rules": rules, "operating_point": {stat: x_star}}


def _finite(t: float) -> float:
    """Infinite hull thresholds (the (0,0) and (1,1) corners) stored as JSON-safe numbers."""
    return 1e30 if t == np.inf else (-1e30 if t == -np.inf else float(t))


def _rule(t_first: float, t_second: float, p_first: float, p_ignore: float, constant: float) -> dict[str, float]:
    return {
        "t_first": _finite(t_first),
        "t_second": _finite(t_second),
        "p_first": float(np.clip(p_first, 0, 1)),
        "p_ignore": float(np.clip(p_ignore, 0, 1)),
        "constant": float(constant),
    }


def positive_probability(scores: np.ndarray, rule: dict[str, float]) -> np.ndarray:
    """P(y_hat = 1) of each score under one group's randomized rule."""
    s = np.asarray(scores, dtype=float)
    mixed = rule["p_first"] * (s >= rule["t_first"]) + (1 - rule["p_first"]) * (s >= rule["t_second"])
    return (1 - rule["p_ignore"]) * mixed + rule["p_ignore"] * rule["constant"]
