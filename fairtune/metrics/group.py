"""Group fairness metrics for classifiers: per-group rates and the gaps between groups.

Binary data gives the same values as fairlearn's `demographic_parity_difference`/`ratio` and
`equalized_odds_difference`/`ratio`; multiclass data is handled one-vs-rest, taking the largest value over classes.
Rows whose group is missing (`-1`, `None`, NaN or empty) are left out of the group metrics but counted in accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

MISSING_GROUP = -1
#: the headline metrics `group_fairness_metrics` returns, in report order
HEADLINE_METRICS = (
    "accuracy",
    "macro_f1",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
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


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def _gap(values: list[float]) -> tuple[float, float]:
    """Largest difference and smallest ratio over groups, ignoring groups where the rate is undefined."""
    vals = [v for v in values if not math.isnan(v)]
    if len(vals) < 2:
        return 0.0, 1.0
    hi, lo = max(vals), min(vals)
    ratio = lo / hi if hi > 0 else 1.0
    return hi - lo, ratio


def group_fairness_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    groups: Sequence[Any],
    *,
    labels: Sequence[int] | None = None,
    group_names: dict[Any, str] | Sequence[str] | None = None,
    positive_label: int = 1,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-group rates and the DP / EO / TPR-gap metrics (names as in the fairness report).

    Args:
        y_true, y_pred: class ids per example.
        groups: group id or name per example; missing groups are left out of group metrics.
        labels: all class ids (defaults to those seen in y_true and y_pred).
        group_names: optional mapping (or list indexed by id) from group id to a readable name.
        positive_label: the positive class for binary data.
    """
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    groups = list(groups)
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise ValueError(
            f"y_true, y_pred and groups must have the same length, got {len(y_true)}, {len(y_pred)}, {len(groups)}."
        )
    if len(y_true) == 0:
        raise ValueError("No examples to evaluate: the evaluation set is empty.")
    classes = sorted(set(labels) if labels is not None else set(y_true.tolist()) | set(y_pred.tolist()))
    binary = len(classes) <= 2
    result: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
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

    eval_classes = [positive_label] if binary else classes
    per_group: dict[str, dict[str, Any]] = {}
    sel: dict[int, list[float]] = {c: [] for c in eval_classes}
    tpr: dict[int, list[float]] = {c: [] for c in eval_classes}
    fpr: dict[int, list[float]] = {c: [] for c in eval_classes}
    for g in present:
        m = keep & (g_arr == g)
        yt, yp = y_true[m], y_pred[m]
        stats: dict[str, Any] = {
            "count": int(m.sum()),
            "accuracy": float((yt == yp).mean()),
            "f1": float(
                f1_score(
                    yt,
                    yp,
                    labels=classes,
                    average="binary" if binary else "macro",
                    zero_division=0,
                    pos_label=positive_label,
                )
                if binary
                else f1_score(yt, yp, labels=classes, average="macro", zero_division=0)
            ),
        }
        for c in eval_classes:
            s = _safe_div((yp == c).sum(), len(yp))
            t = _safe_div(((yp == c) & (yt == c)).sum(), (yt == c).sum())
            f = _safe_div(((yp == c) & (yt != c)).sum(), (yt != c).sum())
            sel[c].append(s)
            tpr[c].append(t)
            fpr[c].append(f)
            suffix = "" if binary else f"_class_{c}"
            stats[f"selection_rate{suffix}"] = s
            stats[f"tpr{suffix}"] = t
            stats[f"fpr{suffix}"] = f
        per_group[name_of.get(g, g)] = stats

    dp_diff, dp_ratio, eo_diff, eo_ratio, tpr_gaps = 0.0, 1.0, 0.0, 1.0, []
    for c in eval_classes:
        d, r = _gap(sel[c])
        dt, rt = _gap(tpr[c])
        df, rf = _gap(fpr[c])
        dp_diff, dp_ratio = max(dp_diff, d), min(dp_ratio, r)
        eo_diff, eo_ratio = max(eo_diff, dt, df), min(eo_ratio, rt, rf)
        tpr_gaps.append(dt)
    result.update(
        {
            "demographic_parity_difference": float(dp_diff),
            "demographic_parity_ratio": float(dp_ratio),
            "equalized_odds_difference": float(eo_diff),
            "equalized_odds_ratio": float(eo_ratio),
            # De-Arteaga et al. 2019: root mean square over classes of the largest TPR gap between groups.
            "tpr_gap_rms": float(np.sqrt(np.mean(np.square(tpr_gaps)))) if tpr_gaps else 0.0,
            "num_groups": len(present),
            "per_group": per_group,
        }
    )
    return result
