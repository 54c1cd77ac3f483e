"""Drift of a window against the reference: group mix, each group's base rate and each group's score distribution.

Each comparison gives the population stability index (PSI, `sum (a - e) ln(a / e)` over bins of the two
distributions' shares, shares floored at 1e-4) and a two-sample test with its p-value:

- group mix and base rates: the chi-square test of homogeneity (`scipy.stats.chi2_contingency`);
- scores: the two-sample Kolmogorov-Smirnov test on the stored histogram (100 bins on [0, 1]): D is the
  largest gap between the binned CDFs and the p-value is Smirnov's asymptotic one, as `scipy.stats.ks_2samp(...,
  method="asymp")` computes it (exact when scores lie on the bin grid; otherwise D is within one bin of it).

PSI rules of thumb: below 0.1 stable, 0.1-0.25 moderate, above 0.25 a major shift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, kstwo

PSI_FLOOR = 1e-4
PSI_BINS = 10


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index between two count (or share) vectors over the same bins."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.sum() <= 0 or a.sum() <= 0:
        return math.nan
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def chi_square_p(expected: Sequence[float], actual: Sequence[float]) -> float:
    """p-value of the chi-square test that two count vectors come from the same distribution."""
    table = np.array([expected, actual], dtype=float)
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2 or (table.sum(1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=table.shape[1] == 2).pvalue)


def ks_binned(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """(D, p) of the two-sample KS test on two histograms over the same bins (asymptotic p-value)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    n, m = e.sum(), a.sum()
    if n <= 0 or m <= 0:
        return math.nan, math.nan
    d = float(np.max(np.abs(np.cumsum(e) / n - np.cumsum(a) / m)))
    big, small = max(n, m), min(n, m)
    return d, float(np.clip(kstwo.sf(d, np.round(big * small / (big + small))), 0.0, 1.0))


def _hist_matrix(hist: pd.DataFrame, groups: list[str], bins: int) -> np.ndarray:
    """Counts per (group, bin); row 0 holds all rows (groups or not), row i + 1 group `groups[i]`."""
    out = np.zeros((len(groups) + 1, bins))
    if len(hist):
        index = {g: i + 1 for i, g in enumerate(groups)}
        b = hist["bin"].to_numpy(dtype=int)
        n = hist["n"].to_numpy(dtype=float)
        np.add.at(out[0], b, n)
        rows = np.array([index.get(g, -1) if isinstance(g, str) else -1 for g in hist["grp"]], dtype=int)
        keep = rows >= 0
        np.add.at(out, (rows[keep], b[keep]), n[keep])
    return out


def _label_counts(cells: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(positive labels, labelled rows) per group."""
    lab = cells[cells["y"].notna() & cells["grp"].notna()]
    return lab[lab["y"] == 1].groupby("grp")["n"].sum(), lab.groupby("grp")["n"].sum()


def _coarse(vector: np.ndarray) -> np.ndarray:
    return vector.reshape(PSI_BINS, -1).sum(1)


def _flag(entry: dict[str, Any], n_ref: float, n_win: float, psi_limit: float, alpha: float, min_rows: int) -> None:
    entry["small"] = bool(min(n_ref, n_win) < min_rows)
    p = entry.get("p_value")
    entry["drift"] = bool(
        not entry["small"] and entry["psi"] >= psi_limit and p is not None and math.isfinite(p) and p < alpha
    )


def window_drift(
    cells: pd.DataFrame,
    hist: pd.DataFrame,
    ref_cells: pd.DataFrame,
    ref_hist: pd.DataFrame,
    *,
    bins: int = 100,
    psi_limit: float = 0.25,
    alpha: float = 0.01,
    min_rows: int = 100,
) -> dict[str, Any]:
    """Group mix, base rate and score drift of one window's statistics against the reference statistics."""
    out: dict[str, Any] = {}
    ref_g = ref_cells.dropna(subset=["grp"]).groupby("grp")["n"].sum()
    win_g = cells.dropna(subset=["grp"]).groupby("grp")["n"].sum()
    groups = sorted(set(ref_g.index) | set(win_g.index), key=lambda x: (len(x), x))
    if groups:
        e = np.array([ref_g.get(g, 0) for g in groups], dtype=float)
        a = np.array([win_g.get(g, 0) for g in groups], dtype=float)
        mix = {
            "psi": psi(e, a),
            "p_value": chi_square_p(e, a),
            "test": "chi-square",
            "reference": {g: float(v / e.sum()) for g, v in zip(groups, e)} if e.sum() else {},
            "window": {g: float(v / a.sum()) for g, v in zip(groups, a)} if a.sum() else {},
        }
        _flag(mix, e.sum(), a.sum(), psi_limit, alpha, min_rows)
        out["group_mix"] = mix
    base: dict[str, Any] = {}
    ref_pos, ref_lab = _label_counts(ref_cells)
    win_pos, win_lab = _label_counts(cells)
    for g in groups:
        e_pos, e_n, a_pos, a_n = (float(x.get(g, 0)) for x in (ref_pos, ref_lab, win_pos, win_lab))
        if e_n == 0 or a_n == 0:
            continue
        e, a = np.array([e_pos, e_n - e_pos]), np.array([a_pos, a_n - a_pos])
        entry = {
            "reference": e_pos / e_n,
            "window": a_pos / a_n,
            "psi": psi(e, a),
            "p_value": chi_square_p(e, a),
            "test": "chi-square",
        }
        _flag(entry, e_n, a_n, psi_limit, alpha, min_rows)
        base[g] = entry
    if base:
        out["base_rate"] = base
    scores: dict[str, Any] = {}
    ref_h, win_h = _hist_matrix(ref_hist, groups, bins), _hist_matrix(hist, groups, bins)
    centers = (np.arange(bins) + 0.5) / bins
    for i, g in enumerate(["(all)", *groups]):
        e, a = ref_h[i], win_h[i]
        if e.sum() == 0 or a.sum() == 0:
            continue
        d, p = ks_binned(e, a)
        entry = {
            "psi": psi(_coarse(e), _coarse(a)),
            "ks": d,
            "p_value": p,
            "test": "two-sample Kolmogorov-Smirnov",
            "reference_mean": float((e * centers).sum() / e.sum()),
            "window_mean": float((a * centers).sum() / a.sum()),
        }
        _flag(entry, e.sum(), a.sum(), psi_limit, alpha, min_rows)
        scores[g] = entry
    if scores:
        out["score"] = scores
    return out
