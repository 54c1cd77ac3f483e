"""The bias coefficient: each group's mean residual (label minus score) and the spread of those means.

For a binary classifier with positive-class probability `s_i` and label `y_i`, the residual is `r_i = y_i - s_i`.
A group's bias coefficient is its mean residual `b_g = mean_{i in g} r_i`: positive when the model scores the
group below its observed outcomes (under-prediction), negative when above. A calibrated model has `b_g = 0` for
every group. The spread `bias_coefficient_gap = max_g b_g - min_g b_g` is 0 when every group is mis-scored by
the same amount, whatever the base rates; it is lower-is-better. Intervals are normal approximations
(`b_g +- z * sd_g / sqrt(n_g)`, and for the gap the two extreme groups' standard errors in quadrature).

Everything is computed from per-group sums (count, sum of residuals, sum of squared residuals), so the monitor
can add them up across log files and cron runs; `bias_coefficient` is the row-level entry point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import norm

from fairtune.metrics.group import MISSING_GROUP


def _is_missing(g: Any) -> bool:
    """Missing group as in `fairtune.metrics.group`: None, NaN, empty, or a negative id."""
    if g is None or (isinstance(g, float) and math.isnan(g)) or (isinstance(g, str) and g == ""):
        return True
    return isinstance(g, (int, np.integer)) and int(g) <= MISSING_GROUP


def residual_sums(labels: Sequence[float], scores: Sequence[float], groups: Sequence[Any]) -> dict[str, tuple]:
    """Per group (as str): (count, sum of residuals, sum of squared residuals); missing groups left out."""
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    if not (len(y) == len(s) == len(groups)):
        raise ValueError(f"labels, scores and groups must have the same length, got {len(y)}, {len(s)}, {len(groups)}")
    r = y - s
    out: dict[str, tuple] = {}
    keys = np.asarray(["" if _is_missing(g) else str(g) for g in groups], dtype=object)
    for g in dict.fromkeys(keys.tolist()):
        if g == "":
            continue
        rg = r[keys == g]
        rg = rg[np.isfinite(rg)]
        out[g] = (int(len(rg)), float(rg.sum()), float(np.square(rg).sum()))
    return out


def bias_coefficient_from_sums(
    sums: Mapping[str, tuple[int, float, float]], *, confidence: float = 0.95, groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """`bias_coefficient_gap`, its interval and per-group `mean_residual`/`residual_std`/`residual_count`.

    `groups` restricts the gap to those groups (all groups with residuals by default); per-group values are
    reported for every group.
    """
    z = float(norm.ppf(0.5 + confidence / 2.0))
    per_group: dict[str, dict[str, Any]] = {}
    for g, (n, total, total_sq) in sums.items():
        if n <= 0:
            continue
        mean = total / n
        var = max(total_sq / n - mean * mean, 0.0) * (n / (n - 1) if n > 1 else 0.0)
        se = math.sqrt(var / n) if n > 1 else math.nan
        per_group[str(g)] = {
            "residual_count": int(n),
            "mean_residual": float(mean),
            "residual_std": float(math.sqrt(var)) if n > 1 else math.nan,
            "mean_residual_ci": [mean - z * se, mean + z * se] if n > 1 else None,
            "_se": se,
        }
    chosen = [g for g in per_group if groups is None or not groups or g in groups]
    out: dict[str, Any] = {"bias_coefficient_gap": 0.0, "bias_coefficient_gap_ci": None}
    if len(chosen) >= 2:
        hi = max(chosen, key=lambda g: per_group[g]["mean_residual"])
        lo = min(chosen, key=lambda g: per_group[g]["mean_residual"])
        gap = per_group[hi]["mean_residual"] - per_group[lo]["mean_residual"]
        se = math.hypot(per_group[hi]["_se"], per_group[lo]["_se"])
        out["bias_coefficient_gap"] = float(gap)
        out["bias_coefficient_gap_ci"] = [gap - z * se, gap + z * se] if math.isfinite(se) else None
        out["bias_coefficient_groups"] = [lo, hi]
    for stats in per_group.values():
        stats.pop("_se")
    out["per_group"] = per_group
    return out


def bias_coefficient(
    labels: Sequence[float],
    scores: Sequence[float],
    groups: Sequence[Any],
    *,
    confidence: float = 0.95,
    gap_groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The bias coefficient of row-aligned labels (0/1), positive-class scores and groups (see module doc)."""
    return bias_coefficient_from_sums(residual_sums(labels, scores, groups), confidence=confidence, groups=gap_groups)
