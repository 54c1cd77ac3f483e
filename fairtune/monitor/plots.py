"""Time-series plots per metric: the value per window, its confidence band, promises/constraints, alert markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairtune.monitor.report import windows_frame


def plot_metrics(report: dict[str, Any], folder: Path, promises: dict[str, float], constraints: list[Any]) -> dict:
    """Write `folder/<metric>.png` for every metric measured; returns {metric: path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = windows_frame(report)
    out: dict[str, str] = {}
    if frame.empty:
        return out
    folder.mkdir(parents=True, exist_ok=True)
    for metric, rows in frame.groupby("metric", sort=False):
        rows = rows.sort_values("key")
        x = list(range(len(rows)))
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows)), 3.2))
        ax.fill_between(x, rows["low"], rows["high"], alpha=0.25, label="confidence interval")
        ax.plot(x, rows["value"], marker="o", label=metric)
        small = rows["small"].to_numpy()
        if small.any():
            ax.scatter(
                [i for i, s in zip(x, small) if s],
                rows["value"][small],
                facecolors="white",
                edgecolors="grey",
                zorder=3,
                label="small window",
            )
        alert = rows["alert"].to_numpy()
        if alert.any():
            ax.scatter(
                [i for i, a in zip(x, alert) if a],
                rows["value"][alert],
                marker="X",
                s=90,
                color="red",
                zorder=4,
                label="alert",
            )
        if metric in promises:
            ax.axhline(promises[metric], color="green", linestyle="--", label="model card")
        for c in constraints:
            if c.metric == metric:
                ax.axhline(c.value, color="red", linestyle=":", label=str(c))
        ax.set_xticks(x)
        ax.set_xticklabels(rows["window"], rotation=45, ha="right", fontsize=7)
        ax.set_title(metric)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = folder / f"{metric}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out[metric] = f"{folder.name}/{path.name}"
    return out
