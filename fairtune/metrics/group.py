"""Group fairness metrics for classifiers: per-group rates and the gaps between groups, equal to the peers' values.

- fairlearn: on binary data `demographic_parity_difference`/`ratio`, `equalized_odds_difference`/`ratio` and
  `equal_opportunity_difference`/`ratio` equal fairlearn's functions of the same names (default
  `method="between_groups"`, `agg="worst_case"`), with `sample_weight` too. As in fairlearn, a group with no
  positives has TPR 0 and one with no negatives FPR 0 (`undefined_rate="zero"`); `undefined_rate="skip"` leaves
  such a group out of that gap instead (fairtune's behaviour before 0.3). Multiclass data is one-vs-rest, taking
  the largest gap over classes.
- fairlib: `tpr_gap_rms` is fairlib's TPR GAP (Han et al. 2022, `Aggregation_GAP`): per class, the sum over groups
  of |TPR_group - TPR_overall|, then the root mean square over classes, where a binary task has two classes
  (class 0's TPR is the TNR). With two groups the sum of distances equals the max-min gap; for more groups
  `tpr_gap_rms_max` gives the RMS of the max-min gaps instead. fairlib adds 1e-5 to every confusion-matrix cell;
  fairtune does not, so the values agree to about 1e-5.
- Rows whose group is missing (`-1`, `None`, NaN or empty) are left out of the group metrics but counted in accuracy.
- Groups with fewer than `min_group_size` rows are listed in `per_group` (with `excluded: true`) and in
  `excluded_groups`, left out of every gap, and a `UserWarning` names them: a 3-row group makes any gap noise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

MISSING_GROUP = -1
UNDEFINED_RATES = ("zero", "skip")
#: the headline metrics `group_fairness_metrics` returns, in report order
HEADLINE_METRICS = (
    "accuracy",
    "macro_f1",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "tpr_gap_rms",
)


def _is_missing(g: Any) -> bool:
    if g is None:
        return True
    if isinstance(g, float) and math.isnan(g):
        return True
    if isinstance(g, str) and g == "":
        return True
    return isinstance(g, (int, np.integer)) and int(g) < 0


def _rate(num: float, den: float, undefined: str) -> float:
    """num / den; an empty denominator gives 0 (fairlearn's convention) or NaN (`skip`: left out of gaps)."""
    if den > 0:
        return float(num) / float(den)
    return 0.0 if undefined == "zero" else float("nan")


def _gap(values: list[float]) -> tuple[float, float]:
    """Largest difference and smallest ratio over groups, ignoring NaN rates (fairlearn's between_groups)."""
    vals = [v for v in values if not math.isnan(v)]
    if len(vals) < 2:
        return 0.0, 1.0
    hi, lo = max(vals), min(vals)
    ratio = lo / hi if hi > 0 else 1.0
    return hi - lo, ratio


def _weighted_f1(yt: np.ndarray, yp: np.ndarray, w: np.ndarray, classes: list[int], binary: bool, pos: int) -> float:
    if binary:
        return float(
            f1_score(yt, yp, labels=classes, pos_label=pos, average="binary", zero_division=0, sample_weight=w)
        )
    return float(f1_score(yt, yp, labels=classes, average="macro", zero_division=0, sample_weight=w))


def _weights(sample_weight: Sequence[float] | None, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=float).reshape(-1)
    if len(w) != n:
        raise ValueError(f"sample_weight must have one weight per example ({n}), got {len(w)}.")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("sample_weight must be finite and non-negative.")
    return w


def group_fairness_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    groups: Sequence[Any],
    *,
    labels: Sequence[int] | None = None,
    group_names: dict[Any, str] | Sequence[str] | None = None,
    positive_label: int = 1,
    sample_weight: Sequence[float] | None = None,
    min_group_size: int = 0,
    undefined_rate: str = "zero",
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-group rates and the DP / EO / equal-opportunity / fairlib GAP metrics.

    Args:
        y_true, y_pred: class ids per example.
        groups: group id or name per example; missing groups are left out of group metrics.
        labels: all class ids (defaults to those seen in y_true and y_pred).
        group_names: optional mapping (or list indexed by id) from group id to a readable name.
        positive_label: the positive class for binary data.
        sample_weight: one non-negative weight per example (fairlearn's `sample_weight`); rates become weighted.
        min_group_size: groups with fewer rows are reported but left out of every gap (with a warning).
        undefined_rate: `zero` (fairlearn: a group without positives has TPR 0) or `skip` (leave it out).
    """
    if undefined_rate not in UNDEFINED_RATES:
        raise ValueError(f"undefined_rate must be one of {UNDEFINED_RATES}, got {undefined_rate!r}.")
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    groups = list(groups)
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise ValueError(
            f"y_true, y_pred and groups must have the same length, got {len(y_true)}, {len(y_pred)}, {len(groups)}."
        )
    if len(y_true) == 0:
        raise ValueError("No examples to evaluate: the evaluation set is empty.")
    w = _weights(sample_weight, len(y_true))
    classes = sorted(set(labels) if labels is not None else set(y_true.tolist()) | set(y_pred.tolist()))
    binary = len(classes) <= 2
    result: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred, sample_weight=w)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0, sample_weight=w)),
    }

    keep = np.array([not _is_missing(g) for g in groups], dtype=bool)
    g_arr = np.array([str(g) if not _is_missing(g) else "" for g in groups], dtype=object)
    if isinstance(group_names, dict):
        name_of = {str(k): str(v) for k, v in group_names.items()}
    elif group_names is not None:
        name_of = {str(i): str(n) for i, n in enumerate(group_names)}
    else:
        name_of = {}
    present = sorted({g for g in g_arr[keep]}, key=lambda x: (len(x), x))
    result["num_examples"] = len(y_true)
    result["num_examples_without_group"] = int((~keep).sum())
    counts = {g: int((keep & (g_arr == g)).sum()) for g in present}
    excluded = [g for g in present if counts[g] < min_group_size]
    if excluded:
        warnings.warn(
            f"groups with fewer than min_group_size={min_group_size} rows are left out of the gaps: "
            + ", ".join(f"{name_of.get(g, g)} ({counts[g]})" for g in excluded),
            UserWarning,
            stacklevel=2,
        )
    headline = [g for g in present if g not in excluded]

    dp_classes = [positive_label] if binary else classes
    gap_classes = classes if len(classes) > 1 else dp_classes  # fairlib: every class, class 0's TPR is the TNR
    per_group: dict[str, dict[str, Any]] = {}
    sel: dict[int, list[float]] = {c: [] for c in classes}
    tpr: dict[int, list[float]] = {c: [] for c in classes}
    fpr: dict[int, list[float]] = {c: [] for c in classes}
    for g in present:
        m = keep & (g_arr == g)
        yt, yp, wg = y_true[m], y_pred[m], w[m]
        stats: dict[str, Any] = {
            "count": counts[g],
            "accuracy": _rate((wg * (yt == yp)).sum(), wg.sum(), undefined_rate),
            "f1": _weighted_f1(yt, yp, wg, classes, binary, positive_label),
        }
        if g in excluded:
            stats["excluded"] = True
        for c in classes:
            s = _rate((wg * (yp == c)).sum(), wg.sum(), undefined_rate)
            t = _rate((wg * ((yp == c) & (yt == c))).sum(), (wg * (yt == c)).sum(), undefined_rate)
            f = _rate((wg * ((yp == c) & (yt != c))).sum(), (wg * (yt != c)).sum(), undefined_rate)
            if g in headline:
                sel[c].append(s)
                tpr[c].append(t)
                fpr[c].append(f)
            if c in dp_classes:
                suffix = "" if binary else f"_class_{c}"
                stats[f"selection_rate{suffix}"] = s
                stats[f"tpr{suffix}"] = t
                stats[f"fpr{suffix}"] = f
        per_group[name_of.get(g, g)] = stats

    dp_diff, dp_ratio, eo_diff, eo_ratio, eop_diff, eop_ratio = 0.0, 1.0, 0.0, 1.0, 0.0, 1.0
    for c in dp_classes:
        d, r = _gap(sel[c])
        dt, rt = _gap(tpr[c])
        df, rf = _gap(fpr[c])
        dp_diff, dp_ratio = max(dp_diff, d), min(dp_ratio, r)
        eo_diff, eo_ratio = max(eo_diff, dt, df), min(eo_ratio, rt, rf)
        eop_diff, eop_ratio = max(eop_diff, dt), min(eop_ratio, rt)
    in_headline = keep & np.isin(g_arr, headline)
    max_gaps, overall_gaps = [], []
    for c in gap_classes:
        max_gaps.append(_gap(tpr[c])[0])
        pos = in_headline & (y_true == c)
        overall = _rate((w * (pos & (y_pred == c))).sum(), (w * pos).sum(), undefined_rate)
        dist = [abs(t - overall) for t in tpr[c] if not math.isnan(t)] if len(headline) > 1 else []
        overall_gaps.append(float(sum(dist)) if not math.isnan(overall) else 0.0)
    result.update(
        {
            "demographic_parity_difference": float(dp_diff),
            "demographic_parity_ratio": float(dp_ratio),
            "equalized_odds_difference": float(eo_diff),
            "equalized_odds_ratio": float(eo_ratio),
            "equal_opportunity_difference": float(eop_diff),
            "equal_opportunity_ratio": float(eop_ratio),
            # fairlib's GAP: per class sum over groups of |TPR_g - TPR_overall|, RMS over classes.
            "tpr_gap_rms": _rms(overall_gaps),
            # RMS over classes of the max-min TPR gap (equal to tpr_gap_rms with two groups).
            "tpr_gap_rms_max": _rms(max_gaps),
            "num_groups": len(headline),
            "excluded_groups": {name_of.get(g, g): counts[g] for g in excluded},
            "per_group": per_group,
        }
    )
    return result


def _rms(values: list[float]) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if values else 0.0


def equal_opportunity_difference(
    y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[Any], **kwargs: Any
) -> float:
    """Largest TPR difference between groups (fairlearn's `equal_opportunity_difference` on binary data)."""
    return group_fairness_metrics(y_true, y_pred, groups, **kwargs)["equal_opportunity_difference"]


def equal_opportunity_ratio(
    y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[Any], **kwargs: Any
) -> float:
    """Smallest TPR ratio between groups (fairlearn's `equal_opportunity_ratio` on binary data)."""
    return group_fairness_metrics(y_true, y_pred, groups, **kwargs)["equal_opportunity_ratio"]
