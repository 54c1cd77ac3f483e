"""PNG plots: per-group bars with confidence intervals, side by side with the baseline when there is one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fairtune.evaluation.base import SuiteResult


def _values(result: SuiteResult, rows: list[str], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Bar heights and (2, n) error-bar offsets for a breakdown column."""
    heights = np.asarray([float(result.breakdown.get(r, {}).get(column, math.nan)) for r in rows])
    err = np.zeros((2, len(rows)))
    for i, r in enumerate(rows):
        ci = result.intervals.get(f"{r}/{column}")
        if ci and np.isfinite(heights[i]):
            err[0, i] = max(heights[i] - ci[0], 0.0)
            err[1, i] = max(ci[1] - heights[i], 0.0)
    return heights, err


def label_bars(ax, bars, values: np.ndarray) -> None:
    """Write each bar's value above it, so a zero-height bar reads "0.00" instead of an empty slot ("n/a": NaN)."""
    for bar, v in zip(bars, values):
        ax.annotate(
            "n/a" if not np.isfinite(v) else f"{v:.2f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=6,
        )


def plot_breakdown(result: SuiteResult, path: str | Path, baseline: SuiteResult | None = None) -> Path | None:
    """Bar chart of the suite's `plot_columns` per breakdown row (after vs before when a baseline is given)."""
    if not result.breakdown or not result.plot_columns:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(result.breakdown)
    cols = [c for c in result.plot_columns if any(c in v for v in result.breakdown.values())]
    if not cols:
        return None
    fig, axes = plt.subplots(1, len(cols), figsize=(max(5.0, 0.7 * len(rows) + 2) * len(cols), 4.2), squeeze=False)
    x = np.arange(len(rows))
    width = 0.38 if baseline is not None else 0.6
    for ax, col in zip(axes[0], cols):
        if baseline is not None:
            bh, be = _values(baseline, rows, col)
            bars = ax.bar(
                x - width / 2,
                np.nan_to_num(bh),
                width,
                yerr=be,
                capsize=3,
                label="before (baseline)",
                color="#bbbbbb",
                edgecolor="black",
                linewidth=0.5,
            )
            label_bars(ax, bars, bh)
        h, e = _values(result, rows, col)
        bars = ax.bar(
            x + (width / 2 if baseline is not None else 0),
            np.nan_to_num(h),
            width,
            yerr=e,
            capsize=3,
            label="after" if baseline is not None else None,
            color="#3b75af",
            edgecolor="black",
            linewidth=0.5,
        )
        label_bars(ax, bars, h)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(rows, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{result.suite}: {col} by {result.breakdown_label}")
        ax.grid(axis="y", alpha=0.3)
        if baseline is not None:
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_headline(current: dict[str, float], baseline: dict[str, float], path: str | Path) -> Path | None:
    """Before/after bars of the headline metrics both runs share."""
    keys = [k for k in current if k in baseline and np.isfinite(current[k]) and np.isfinite(baseline[k])]
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(keys) + 2), 4.2))
    x = np.arange(len(keys))
    ax.bar(x - 0.2, [baseline[k] for k in keys], 0.4, label="before (baseline)", color="#bbbbbb")
    ax.bar(x + 0.2, [current[k] for k in keys], 0.4, label="after", color="#3b75af")
    ax.set_xticks(x)
    ax.set_xticklabels(keys, rotation=45, ha="right", fontsize=8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_title("headline metrics: before vs after")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
