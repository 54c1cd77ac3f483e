"""The training run's fairness report: `fairness_report.json`, `fairness_report.md` and per-group PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fairtune.metrics.group import HEADLINE_METRICS

HEADLINE = (
    *HEADLINE_METRICS,
    "flip_rate",
    "ctf_gap",
    "leakage_probe_accuracy",
    "leakage_probe_majority_baseline",
)
GROUP_STATS = ("accuracy", "tpr", "fpr", "selection_rate")


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def render_markdown(report: dict[str, Any], title: str = "fairtune fairness report") -> str:
    """A short Markdown summary: headline metrics, then one row per group."""
    lines = [f"# {title}", "", f"Split: `{report.get('split', '?')}`, {report.get('num_examples', '?')} examples.", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key in HEADLINE:
        if key in report:
            lines.append(f"| {key} | {_fmt(report[key])} |")
    for key, value in report.items():
        if key.endswith("_loss") or key.startswith("adversary_"):
            lines.append(f"| {key} | {_fmt(value)} |")
    per_group = report.get("per_group") or {}
    if per_group:
        stats = [s for s in next(iter(per_group.values())) if s != "count"]
        lines += ["", "## Per group", "", "| group | count | " + " | ".join(stats) + " |"]
        lines.append("|---|---|" + "---|" * len(stats))
        for g, row in per_group.items():
            lines.append(f"| {g} | {row.get('count', '')} | " + " | ".join(_fmt(row.get(s)) for s in stats) + " |")
    lines += [
        "",
        "Gaps are max - min over groups (one-vs-rest per class, largest over classes, for multiclass); "
        "`tpr_gap_rms` is the root mean square over classes of the TPR gap (De-Arteaga et al. 2019); the leakage "
        "probe is the cross-validated accuracy of a logistic regression predicting the group from the frozen "
        "representation, next to the majority baseline.",
    ]
    return "\n".join(lines) + "\n"


def plot_per_group(report: dict[str, Any], path: Path) -> Path | None:
    """Bar chart of per-group accuracy, TPR, FPR and selection rate."""
    per_group = report.get("per_group") or {}
    if not per_group:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stats = [s for s in next(iter(per_group.values())) if s != "count" and s.split("_class_")[0] in GROUP_STATS]
    groups = list(per_group)
    x = np.arange(len(stats))
    width = 0.8 / max(len(groups), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(stats)), 3.5))
    for i, g in enumerate(groups):
        vals = [per_group[g].get(s, float("nan")) for s in stats]
        ax.bar(x + i * width, vals, width, label=g)
    ax.set_xticks(x + width * (len(groups) - 1) / 2)
    ax.set_xticklabels(stats, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(f"Per-group rates ({report.get('split', '')})")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_fairness_report(output_dir: str | Path, report: dict[str, Any], title: str | None = None) -> dict[str, str]:
    """Write the JSON (metric names as top-level keys, no `eval_` prefix), Markdown and plot; return their paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "fairness_report.json", "markdown": out / "fairness_report.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=float))
    paths["markdown"].write_text(render_markdown(report, title or "fairtune fairness report"))
    plot = plot_per_group(report, out / "fairness_per_group.png")
    if plot is not None:
        paths["plot"] = plot
    return {k: str(v) for k, v in paths.items()}
