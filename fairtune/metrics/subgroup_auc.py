"""Identity-term bias metrics for score-based classifiers (Borkan et al. 2019) and per-group calibration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank statistic (ties count half), NaN when only one class is present."""
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def subgroup_aucs(labels: Any, scores: Any, in_subgroup: Any) -> dict[str, float]:
    """Subgroup AUC, BPSN AUC (background positive, subgroup negative) and BNSP AUC for one identity subgroup."""
    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=float)
    m = np.asarray(in_subgroup, dtype=bool)
    bpsn = (m & (y == 0)) | (~m & (y == 1))
    bnsp = (m & (y == 1)) | (~m & (y == 0))
    return {
        "subgroup_auc": _auc(y[m], s[m]),
        "bpsn_auc": _auc(y[bpsn], s[bpsn]),
        "bnsp_auc": _auc(y[bnsp], s[bnsp]),
        "count": int(m.sum()),
    }


def calibration(labels: Any, scores: Any, n_bins: int = 10) -> dict[str, float]:
    """Mean score, positive rate, their difference, and expected calibration error (equal-width bins)."""
    y = np.asarray(labels).astype(float)
    s = np.asarray(scores, dtype=float)
    if len(y) == 0:
        return {
            "mean_score": float("nan"),
            "positive_rate": float("nan"),
            "calibration_gap": float("nan"),
            "ece": float("nan"),
        }
    bins = np.clip((s * n_bins).astype(int), 0, n_bins - 1)
    ece = sum(abs(y[bins == b].mean() - s[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins))
    return {
        "mean_score": float(s.mean()),
        "positive_rate": float(y.mean()),
        "calibration_gap": float(s.mean() - y.mean()),
        "ece": float(ece),
    }


def generalized_mean(values: Sequence[float], power: float = -5.0) -> float:
    """Power mean of finite values (p = -5 emphasises the worst subgroup, as in the Jigsaw bias benchmark)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan")
    if power < 0 and (v <= 0).any():
        return 0.0
    return float(np.power(np.mean(np.power(v, power)), 1.0 / power))


def subgroup_auc_report(
    labels: Any, scores: Any, memberships: Mapping[str, Any], *, min_count: int = 1
) -> dict[str, Any]:
    """Per identity term AUCs and calibration, with worst-case and generalized-mean summaries.

    `memberships` maps each identity term to a boolean mask of rows mentioning it; terms with fewer than
    `min_count` rows are skipped. Summary keys: `subgroup_auc_min`, `bpsn_auc_min`, `bnsp_auc_min`,
    `subgroup_auc_gmean`, `bpsn_auc_gmean`, `bnsp_auc_gmean`, `overall_auc`, `final_bias_auc` (Jigsaw's mix:
    the mean of overall AUC and the three generalized means), and `calibration_gap_max` (largest |gap|).
    """
    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=float)
    per_term: dict[str, dict[str, float]] = {}
    for term, mask in memberships.items():
        m = np.asarray(mask, dtype=bool)
        if m.sum() < min_count:
            continue
        per_term[term] = {**subgroup_aucs(y, s, m), **calibration(y[m], s[m])}
    out: dict[str, Any] = {"overall_auc": _auc(y, s)}
    for key in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        vals = [r[key] for r in per_term.values()]
        finite = [v for v in vals if np.isfinite(v)]
        out[f"{key}_min"] = float(min(finite)) if finite else float("nan")
        out[f"{key}_gmean"] = generalized_mean(vals)
    out["final_bias_auc"] = float(
        np.mean([out["overall_auc"], out["subgroup_auc_gmean"], out["bpsn_auc_gmean"], out["bnsp_auc_gmean"]])
    )
    gaps = [abs(r["calibration_gap"]) for r in per_term.values() if np.isfinite(r["calibration_gap"])]
    out["calibration_gap_max"] = float(max(gaps)) if gaps else float("nan")
    out["per_term"] = per_term
    return out
