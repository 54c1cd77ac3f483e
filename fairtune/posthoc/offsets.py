"""Per-group, per-class score offsets for multiclass classifiers: the multiclass form of per-group thresholds.

A group's prediction is `argmax_k(log p_k + b[group, k])`. The offsets are fitted on validation data so that the
one-vs-rest rates of every class agree across groups: TPR (`equal_opportunity`), TPR and FPR (`equalized_odds`)
or selection rate (`demographic_parity`). The groups are coupled only through shared target rates, so each group
is fitted on its own by coordinate descent over its class offsets (class 0's stays 0: only differences matter),
minimising `sum_k |rate_gk - target_k| + accuracy_weight * error_g`; the targets are then reset to the
size-weighted mean of the group rates and the fit repeats. The remaining gap is measured and returned, never
assumed to be zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OFFSET_CRITERIA = ("demographic_parity", "equal_opportunity", "equalized_odds")


def class_rates(pred: np.ndarray, y: np.ndarray, k: int, criterion: str) -> np.ndarray:
    """`[K]` (or `[2K]` for equalized odds) one-vs-rest rates of predictions `pred` against labels `y`."""
    rates = []
    for c in range(k):
        hit = pred == c
        if criterion == "demographic_parity":
            rates.append(hit.mean() if len(hit) else 0.0)
            continue
        pos = y == c
        rates.append(hit[pos].mean() if pos.any() else 0.0)
        if criterion == "equalized_odds":
            rates.append(hit[~pos].mean() if (~pos).any() else 0.0)
    return np.asarray(rates, dtype=float)


def apply_offsets(logp: np.ndarray, groups: np.ndarray, offsets: dict[str, list[float]]) -> np.ndarray:
    """Class predictions `argmax(log p + b[group])`; a group without offsets keeps the plain argmax."""
    adjusted = np.array(logp, dtype=float, copy=True)
    for name, b in offsets.items():
        m = groups == name
        adjusted[m] += np.asarray(b, dtype=float)
    return adjusted.argmax(1)


def _fit_group(
    logp: np.ndarray, y: np.ndarray, target: np.ndarray, criterion: str, grid: np.ndarray, accuracy_weight: float
) -> np.ndarray:
    k = logp.shape[1]
    b = np.zeros(k)

    def loss(bb: np.ndarray) -> float:
        pred = (logp + bb).argmax(1)
        return float(np.abs(class_rates(pred, y, k, criterion) - target).sum() + accuracy_weight * (pred != y).mean())

    current = loss(b)
    for _ in range(3):
        improved = False
        for c in range(1, k):
            trial = np.repeat(b[None, :], len(grid), axis=0)
            trial[:, c] = grid
            losses = [loss(t) for t in trial]
            i = int(np.argmin(losses))
            if losses[i] < current - 1e-12:
                b, current, improved = trial[i], losses[i], True
        if not improved:
            break
    return b


def fit_offsets(
    probs: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    names: list[str],
    criterion: str,
    *,
    accuracy_weight: float = 0.5,
    grid: np.ndarray | None = None,
    rounds: int = 3,
) -> dict[str, Any]:
    """Offsets `{group: [b_0, ..., b_{K-1}]}` for class probabilities `probs` `[N, K]` (see the module docstring)."""
    if criterion not in OFFSET_CRITERIA:
        raise ValueError(f"criterion must be one of {OFFSET_CRITERIA}, got {criterion!r}")
    logp = np.log(np.clip(np.asarray(probs, dtype=float), 1e-12, 1.0))
    k = logp.shape[1]
    grid = np.linspace(-4.0, 4.0, 81) if grid is None else grid
    base = logp.argmax(1)
    sizes = np.asarray([(groups == n).sum() for n in names], dtype=float)
    rates = np.stack([class_rates(base[groups == n], labels[groups == n], k, criterion) for n in names])
    offsets = {n: np.zeros(k) for n in names}
    for _ in range(rounds):
        target = (rates * sizes[:, None]).sum(0) / sizes.sum()
        for n in names:
            m = groups == n
            offsets[n] = _fit_group(logp[m], labels[m], target, criterion, grid, accuracy_weight)
        pred = apply_offsets(logp, groups, {n: b.tolist() for n, b in offsets.items()})
        rates = np.stack([class_rates(pred[groups == n], labels[groups == n], k, criterion) for n in names])
    gap = float((rates.max(0) - rates.min(0)).max())
    return {"offsets": {n: [float(v) for v in b] for n, b in offsets.items()}, "validation_gap": gap}
