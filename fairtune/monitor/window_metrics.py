"""Group fairness metrics of one window from its cell counts, with multinomial bootstrap intervals.

A window is summarised by how many rows fall in each (group, label, prediction) cell. The point values come
from `fairtune.metrics.group.group_fairness_metrics` itself, called on the cells with their counts as
`sample_weight`, so the monitor reports exactly what evaluation reports. Rows without a label count in the
label-free metrics (selection rate, demographic parity); the labelled metrics (accuracy, TPR/FPR, equalized odds,
equal opportunity, GAP) use the labelled rows. Groups with fewer rows than `min_group_rows` (labelled rows for the
labelled metrics) and groups outside `gap_groups` are listed but left out of the gaps.

Bootstrap: resampling a window's rows with replacement is drawing its cell counts from a multinomial, so all
resamples are computed at once, vectorised, in O(cells) each instead of O(rows). The vectorised formulas are
checked against the point values on every call; a metric where they disagree (after a change of conventions in
`fairtune.metrics.group`) falls back to calling `group_fairness_metrics` on every resample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairtune.metrics.group import group_fairness_metrics
from fairtune.metrics.residuals import bias_coefficient_from_sums

LABEL_FREE = ("selection_rate", "demographic_parity_difference", "demographic_parity_ratio")
LABELLED = (
    "accuracy",
    "macro_f1",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "tpr_gap_rms",
)
#: every headline metric of a window, in report order
WINDOW_METRICS = (*LABEL_FREE, *LABELLED, "bias_coefficient_gap")
GROUP_RATES = ("selection_rate", "tpr", "fpr", "accuracy", "base_rate")


def group_order(names: Sequence[str]) -> list[str]:
    """Groups in the order of the fairness report (shorter names first, then alphabetical)."""
    return sorted(set(names), key=lambda x: (len(x), x))


@dataclass
class CellLayout:
    """Row-aligned cells: group index (-1 = no group), label (0, 1, or 2 = unknown), prediction, count."""

    groups: list[str]
    g: np.ndarray
    y: np.ndarray
    p: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_cells(cls, cells: pd.DataFrame) -> CellLayout:
        """Build from a cells frame with `grp`, `y`, `p`, `n` (rows with n = 0 dropped).

        Cells are put in one canonical order (group, label, prediction): a SQL `GROUP BY` returns them in any
        order, and the seeded multinomial draws depend on it, so without this a rerun's intervals could differ.
        """
        cells = cells[cells["n"] > 0]
        names = group_order([str(g) for g in cells["grp"].dropna()])
        index = {g: i for i, g in enumerate(names)}
        g = np.array([-1 if pd.isna(v) else index[str(v)] for v in cells["grp"]], dtype=int)
        y = np.array([2 if pd.isna(v) else int(v) for v in cells["y"]], dtype=int)
        p = cells["p"].to_numpy(dtype=int)
        n = cells["n"].to_numpy(dtype=np.int64)
        order = np.lexsort((p, y, g))
        return cls(names, g[order], y[order], p[order], n[order])

    def group_counts(self, labelled: bool = False) -> dict[str, int]:
        """Rows (or labelled rows) per group."""
        keep = self.y < 2 if labelled else np.ones(len(self.y), dtype=bool)
        return {name: int(self.counts[keep & (self.g == i)].sum()) for i, name in enumerate(self.groups)}


# point values: fairtune.metrics.group on weighted cells -----------------------------------------------------
def _reference(layout: CellLayout, weights: np.ndarray, labelled: bool, gap_groups: set[str] | None) -> dict:
    """`group_fairness_metrics` on the cells; groups not in `gap_groups` are passed as missing (None = all)."""
    keep = (layout.y < 2) if labelled else np.ones(len(layout.y), dtype=bool)
    keep &= weights > 0
    if not keep.any():
        return {}
    names = [layout.groups[i] if i >= 0 else None for i in layout.g[keep]]
    if gap_groups is not None:
        names = [g if g in gap_groups else None for g in names]
    y = np.where(layout.y[keep] < 2, layout.y[keep], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return group_fairness_metrics(y, layout.p[keep], names, labels=[0, 1], sample_weight=weights[keep])


def point_metrics(layout: CellLayout, headline_groups: set[str], labelled_groups: set[str]) -> dict[str, float]:
    """Headline metrics and the `<group>/<rate>` values of the groups in the gaps, from `group_fairness_metrics`."""
    w = layout.counts.astype(float)
    total = w.sum()
    out: dict[str, float] = {"selection_rate": float((w * (layout.p == 1)).sum() / total) if total else math.nan}
    free = _reference(layout, w, False, headline_groups)
    out["demographic_parity_difference"] = free["demographic_parity_difference"]
    out["demographic_parity_ratio"] = free["demographic_parity_ratio"]
    for g, stats in free["per_group"].items():
        out[f"{g}/selection_rate"] = stats["selection_rate"]
    lab = _reference(layout, w, True, labelled_groups)
    if lab:
        out.update({k: float(lab[k]) for k in LABELLED})
        for g, stats in lab["per_group"].items():
            for rate in ("tpr", "fpr", "accuracy"):
                out[f"{g}/{rate}"] = stats[rate]
    return out


# vectorised over resamples ------------------------------------------------------------------------------------
def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (fairlearn's and fairtune's `undefined_rate="zero"`)."""
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _gap(rates: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest difference and smallest ratio over the group columns `cols` (0 and 1 with fewer than two)."""
    shape = rates.shape[:-1]
    if len(cols) < 2:
        return np.zeros(shape), np.ones(shape)
    r = rates[..., cols]
    hi, lo = r.max(-1), r.min(-1)
    return hi - lo, np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), 1.0)


def vector_metrics(layout: CellLayout, counts: np.ndarray, free_cols: np.ndarray, lab_cols: np.ndarray) -> dict:
    """The metrics of `point_metrics` for counts of shape (resamples, cells)."""
    c = np.asarray(counts, dtype=float)
    member = np.zeros((len(layout.g), len(layout.groups)))
    has = layout.g >= 0
    member[np.flatnonzero(has), layout.g[has]] = 1.0
    p1, y1, y0 = layout.p == 1, layout.y == 1, layout.y == 0

    def per_group(mask: np.ndarray) -> np.ndarray:
        return (c * mask) @ member

    n_g, s_g = per_group(np.ones_like(p1)), per_group(p1)
    pos_g, tp_g, neg_g, fp_g = per_group(y1), per_group(y1 & p1), per_group(y0), per_group(y0 & p1)
    sel, tpr, fpr = _rate(s_g, n_g), _rate(tp_g, pos_g), _rate(fp_g, neg_g)
    total = c.sum(-1)
    out: dict[str, np.ndarray] = {
        "selection_rate": np.where(total > 0, (c * p1).sum(-1) / np.maximum(total, 1), np.nan)
    }
    out["demographic_parity_difference"], out["demographic_parity_ratio"] = _gap(sel, free_cols)
    tp, fp = (c * (y1 & p1)).sum(-1), (c * (y0 & p1)).sum(-1)
    fn, tn = (c * (y1 & ~p1)).sum(-1), (c * (y0 & ~p1)).sum(-1)
    labelled = tp + fp + fn + tn
    out["accuracy"] = np.where(labelled > 0, _rate(tp + tn, labelled), np.nan)
    out["macro_f1"] = np.where(
        labelled > 0, (_rate(2 * tp, 2 * tp + fp + fn) + _rate(2 * tn, 2 * tn + fn + fp)) / 2, np.nan
    )
    dt, rt = _gap(tpr, lab_cols)
    df, rf = _gap(fpr, lab_cols)
    out["equalized_odds_difference"], out["equalized_odds_ratio"] = np.maximum(dt, df), np.minimum(rt, rf)
    out["equal_opportunity_difference"], out["equal_opportunity_ratio"] = dt, rt
    # fairlib GAP over both classes: class 1's TPR is the TPR, class 0's is the TNR (1 - FPR)
    gaps = []
    for tpr_c, num, den in ((tpr, tp_g, pos_g), (1.0 - fpr, neg_g - fp_g, neg_g)):
        if len(lab_cols) < 2:
            gaps.append(np.zeros(c.shape[:-1]))
            continue
        overall = _rate(num[..., lab_cols].sum(-1), den[..., lab_cols].sum(-1))
        if len(lab_cols):
            tpr_c = np.where(den > 0, tpr_c, 0.0)  # a class absent from a group has TPR 0
        gaps.append(np.abs(tpr_c[..., lab_cols] - overall[..., None]).sum(-1))
    out["tpr_gap_rms"] = np.sqrt((gaps[0] ** 2 + gaps[1] ** 2) / 2.0)
    base = np.where(pos_g + neg_g > 0, pos_g / np.maximum(pos_g + neg_g, 1), np.nan)
    for i, g in enumerate(layout.groups):
        out[f"{g}/selection_rate"] = sel[..., i]
        for name, values in (
            ("tpr", tpr),
            ("fpr", fpr),
            ("accuracy", _rate(tp_g + neg_g - fp_g, pos_g + neg_g)),
            ("base_rate", base),
        ):
            out[f"{g}/{name}"] = np.where(pos_g[..., i] + neg_g[..., i] > 0, values[..., i], np.nan)
    return out


def multinomial_intervals(
    layout: CellLayout,
    point: dict[str, float],
    headline_groups: set[str],
    labelled_groups: set[str],
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals from multinomial resamples of the window's rows (see module doc).

    As in `fairtune.metrics.bootstrap.bootstrap_intervals`, NaN resamples of a metric are skipped and an interval
    is kept only when at least half the resamples define it.
    """
    total = int(layout.counts.sum())
    if n_bootstrap <= 0 or total == 0:
        return {}
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, layout.counts / total, size=n_bootstrap)
    free_cols = np.array([i for i, g in enumerate(layout.groups) if g in headline_groups], dtype=int)
    lab_cols = np.array([i for i, g in enumerate(layout.groups) if g in labelled_groups], dtype=int)
    check = vector_metrics(layout, layout.counts[None, :], free_cols, lab_cols)
    samples = vector_metrics(layout, draws, free_cols, lab_cols)
    stale = [k for k in point if k in check and not _close(point[k], float(check[k][0]))]
    if stale:  # conventions changed in fairtune.metrics.group: recompute those metrics the slow way
        slow: dict[str, list[float]] = {k: [] for k in stale}
        for row in draws:
            values = point_metrics(
                CellLayout(layout.groups, layout.g, layout.y, layout.p, row), headline_groups, labelled_groups
            )
            for k in stale:
                slow[k].append(values.get(k, math.nan))
        samples.update({k: np.asarray(v, dtype=float) for k, v in slow.items()})
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for key in dict.fromkeys([*point, *check]):
        vals = np.asarray(samples.get(key, []), dtype=float)
        vals = vals[np.isfinite(vals)]
        if len(vals) >= max(2, n_bootstrap // 2):
            out[key] = (float(np.quantile(vals, alpha)), float(np.quantile(vals, 1.0 - alpha)))
    return out


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a))


def window_metrics(
    cells: pd.DataFrame,
    *,
    gap_groups: Sequence[str] = (),
    min_group_rows: int = 0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Point values, intervals, the per-group table and the counts of one window's cells."""
    cells = cells.sort_values(["grp", "y", "p"], na_position="last", kind="stable")  # sums in one order, too
    layout = CellLayout.from_cells(cells)
    counts, lab_counts = layout.group_counts(), layout.group_counts(labelled=True)
    eligible = [g for g in layout.groups if not gap_groups or g in gap_groups]
    headline = {g for g in eligible if counts[g] >= min_group_rows}
    labelled_groups = {g for g in eligible if lab_counts[g] >= min_group_rows}
    point = point_metrics(layout, headline, labelled_groups) if len(layout.counts) else {}
    free_cols = np.array([i for i, g in enumerate(layout.groups) if g in headline], dtype=int)
    lab_cols = np.array([i for i, g in enumerate(layout.groups) if g in labelled_groups], dtype=int)
    values = {k: float(v[0]) for k, v in vector_metrics(layout, layout.counts[None, :], free_cols, lab_cols).items()}
    values.update(point)  # the reference values where there are any; the vectorised ones for the other groups
    intervals = multinomial_intervals(
        layout, point, headline, labelled_groups, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
    )
    per_group: dict[str, dict[str, Any]] = {}
    for g in layout.groups:
        rows = cells[cells["grp"] == g]
        s_n = int(rows["s_n"].sum())
        stats: dict[str, Any] = {"count": counts[g], "labelled": lab_counts[g]}
        stats["mean_score"] = float(rows["s_sum"].sum() / s_n) if s_n else None
        stats.update({r: values[f"{g}/{r}"] for r in GROUP_RATES if not math.isnan(values.get(f"{g}/{r}", math.nan))})
        stats["in_gaps"] = g in headline
        stats["intervals"] = {
            rate: list(intervals.pop(f"{g}/{rate}")) for rate in GROUP_RATES if f"{g}/{rate}" in intervals
        }
        per_group[g] = stats
    lab_cells = cells[cells["y"].notna() & cells["grp"].notna()]
    sums = {
        str(g): (int(d["r_n"].sum()), float(d["r_sum"].sum()), float(d["r_sq"].sum()))
        for g, d in lab_cells.groupby("grp")
        if int(d["r_n"].sum()) > 0
    }
    if sums:
        bias = bias_coefficient_from_sums(sums, confidence=confidence, groups=sorted(labelled_groups))
        point["bias_coefficient_gap"] = bias["bias_coefficient_gap"]
        if bias["bias_coefficient_gap_ci"]:
            intervals["bias_coefficient_gap"] = tuple(bias["bias_coefficient_gap_ci"])
        for g, stats in bias["per_group"].items():
            per_group[g].update(stats)
    dropped = []
    if len(headline) < 2:
        dropped += [k for k in LABEL_FREE if k != "selection_rate"]
    if len(labelled_groups) < 2:
        dropped += [k for k in (*LABELLED, "bias_coefficient_gap") if k not in ("accuracy", "macro_f1")]
    for key in dropped:
        point.pop(key, None)
        intervals.pop(key, None)
    return {
        "rows": int(layout.counts.sum()),
        "labelled_rows": int(layout.counts[layout.y < 2].sum()),
        "rows_without_group": int(layout.counts[layout.g < 0].sum()),
        "metrics": {k: v for k, v in point.items() if "/" not in k},
        "intervals": {k: [float(v[0]), float(v[1])] for k, v in intervals.items()},
        "per_group": per_group,
        "gap_groups": group_order(headline),
        "labelled_gap_groups": group_order(labelled_groups),
        "small_groups": sorted(set(eligible) - headline, key=lambda g: (len(g), g)),
        "small_labelled_groups": sorted(
            {g for g in eligible if lab_counts[g]} - labelled_groups, key=lambda g: (len(g), g)
        ),
    }
