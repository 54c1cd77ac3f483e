"""The training run's fairness report: `fairness_report.json`, `fairness_report.md` and a per-group PNG plot.

One renderer for every task: classification (accuracy, macro-F1, DP/EO/TPR gaps, with the positive class named
and a warning when the model predicts a single class), NER (entity precision/recall/F1 and their gaps) and QA
(exact match, F1 and their gaps). Every gap is shown with the groups it is between and their example counts.

The per-group plot draws 95% bootstrap intervals (`fairtune.metrics.bootstrap`) and labels every bar with its
value, so a rate of 0 shows as a labelled bar rather than a gap. The intervals come from
`report["per_group_intervals"]` when the caller computed them from the predictions (`group_intervals`); otherwise
they are rebuilt from the counts the report holds: a binary classifier's confusion counts per group are exactly
recoverable from its count, accuracy, TPR, FPR and selection rate, and QA exact match is a mean of 0/1 scores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fairtune.metrics.group import HEADLINE_METRICS

HEADLINE = (
    *HEADLINE_METRICS,
    "flip_rate",
    "ctf_gap",
    "leakage_probe_accuracy",
    "leakage_probe_majority_baseline",
)
#: task metrics of NER and QA reports and the gaps the adapters compute
SPAN_HEADLINE = ("exact_match", "f1", "precision", "recall", "exact_match_gap", "f1_gap", "recall_gap")
GROUP_STATS = ("accuracy", "tpr", "fpr", "selection_rate")
SPAN_STATS = ("exact_match", "f1", "precision", "recall")
CONFIG_FILE = "fairtune_config.json"
N_BOOTSTRAP = 1000


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def num_examples(report: dict[str, Any]) -> int | None:
    """The number of evaluated examples: `num_examples`, else the QA predictions, else the per-group counts."""
    if _finite(report.get("num_examples")):
        return int(report["num_examples"])
    if isinstance(report.get("predictions"), (dict, list)) and report["predictions"]:
        return len(report["predictions"])
    per_group = report.get("per_group") or {}
    counts = [row.get("count") for row in per_group.values()]
    if counts and all(_finite(c) for c in counts):
        return int(sum(counts)) + int(report.get("num_examples_without_group", 0) or 0)
    return None


def gap_between(report: dict[str, Any], gap_key: str) -> str:
    """'(male 0.81, n=40 vs female 0.62, n=31)' for `f1_gap`: the groups at the max and min and their counts."""
    stat = gap_key.removesuffix("_gap")
    rows = {g: r for g, r in (report.get("per_group") or {}).items() if _finite(r.get(stat)) and r.get("count", 1)}
    if len(rows) < 2:
        return ""
    hi = max(rows, key=lambda g: rows[g][stat])
    lo = min(rows, key=lambda g: rows[g][stat])
    return (
        f" ({hi} {_fmt(float(rows[hi][stat]))}, n={rows[hi].get('count', '?')} vs "
        f"{lo} {_fmt(float(rows[lo][stat]))}, n={rows[lo].get('count', '?')})"
    )


def single_class_warning(report: dict[str, Any], label_list: Sequence[str] | None = None) -> str | None:
    """A warning when a classifier predicts one class for every example (per-group selection rates all 0 or 1)."""
    per_group = report.get("per_group") or {}
    if not per_group or "accuracy" not in report:
        return None
    counts = {g: r.get("count", 0) for g, r in per_group.items()}
    total = sum(counts.values())
    if not total:
        return None
    keys = sorted({k for r in per_group.values() for k in r if k.startswith("selection_rate")})
    for key in keys:
        rate = sum(per_group[g].get(key, 0.0) * counts[g] for g in per_group) / total
        cls = key.split("_class_")[1] if "_class_" in key else "1"
        if math.isclose(rate, 1.0):
            return f"The model predicts one class ({_class_name(cls, label_list)}) for every example."
        if math.isclose(rate, 0.0) and "_class_" not in key:
            return f"The model predicts one class ({_class_name('0', label_list)}) for every example."
    return None


def _class_name(index: str, label_list: Sequence[str] | None) -> str:
    i = int(index)
    return f"`{label_list[i]}`" if label_list and 0 <= i < len(label_list) else f"class {i}"


def positive_class_line(report: dict[str, Any], label_list: Sequence[str] | None) -> str | None:
    """For a binary classifier: which class the per-group TPR/FPR/selection rates are about."""
    per_group = report.get("per_group") or {}
    if not per_group or not any("tpr" in r for r in per_group.values()):
        return None
    return (
        f"Positive class: {_class_name('1', label_list)} (label id 1); TPR, FPR and selection rates are of that class."
    )


def render_markdown(
    report: dict[str, Any], title: str = "fairtune fairness report", label_list: Sequence[str] | None = None
) -> str:
    """A short Markdown summary: headline metrics and gaps (with the groups and counts), then one row per group."""
    n = num_examples(report)
    count = f", {n} examples" if n is not None else ""
    lines = [f"# {title}", "", f"Split: `{report.get('split', '?')}`{count}.", ""]
    warning = single_class_warning(report, label_list)
    if warning:
        lines += [f"> **Warning:** {warning} Its gaps say little; check the data balance and the training.", ""]
    positive = positive_class_line(report, label_list)
    if positive:
        lines += [positive, ""]
    lines += ["| metric | value |", "|---|---|"]
    keys = [k for k in HEADLINE if k in report] + [k for k in SPAN_HEADLINE if k in report and k not in HEADLINE]
    for key in keys:
        lines.append(f"| {key} | {_fmt(report[key])}{gap_between(report, key) if key.endswith('_gap') else ''} |")
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
    is_span = any(k in report for k in ("exact_match", "precision")) and "accuracy" not in report
    if is_span:
        lines += [
            "",
            "Gaps are max - min over groups of the per-group score (QA: SQuAD exact match and token F1, in %; NER: "
            "entity-level F1 and recall, seqeval); n is the number of examples in each group.",
        ]
    else:
        lines += [
            "",
            "Gaps are max - min over groups (one-vs-rest per class, largest over classes, for multiclass); "
            "`tpr_gap_rms` is the root mean square over classes of the TPR gap (De-Arteaga et al. 2019); the leakage "
            "probe is the cross-validated accuracy of a logistic regression predicting the group from the frozen "
            "representation, next to the majority baseline.",
        ]
    return "\n".join(lines) + "\n"


# ---- confidence intervals ------------------------------------------------------------------------------------
def _binary_rates(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pos, neg = y == 1, y == 0
    return {
        "accuracy": float((y == p).mean()),
        "selection_rate": float((p == 1).mean()),
        "tpr": float((p[pos] == 1).mean()) if pos.any() else math.nan,
        "fpr": float((p[neg] == 1).mean()) if neg.any() else math.nan,
    }


def group_intervals(
    y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[Any], n_resamples: int = N_BOOTSTRAP, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95% bootstrap intervals `{"<group>/<stat>": (lo, hi)}` of a binary classifier's per-group rates."""
    from fairtune.metrics.bootstrap import bootstrap_intervals

    y, p, g = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int), np.asarray(groups, dtype=object)
    out: dict[str, tuple[float, float]] = {}
    for name in dict.fromkeys(g.tolist()):
        m = g == name
        ci = bootstrap_intervals(_binary_rates, [y[m], p[m]], n_resamples=n_resamples, seed=seed)
        out.update({f"{name}/{k}": v for k, v in ci.items()})
    return out


def confusion_from_rates(row: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """(TP, FP, TN, FN) of one group from its count, accuracy, TPR, FPR and selection rate; None if not unique.

    sel*n = TP + FP and acc*n = TP + TN with TP = tpr*P and FP = fpr*(n - P); the result is checked against all
    four rates, so a wrong reconstruction is never used.
    """
    n = row.get("count")
    if not _finite(n) or n <= 0 or not all(k in row for k in GROUP_STATS):
        return None
    n = int(n)
    tpr, fpr = row["tpr"], row["fpr"]
    candidates = range(n + 1)
    if isinstance(tpr, float) and math.isnan(tpr):
        candidates = [0]
    elif isinstance(fpr, float) and math.isnan(fpr):
        candidates = [n]
    for pos in candidates:
        tp = round((0.0 if pos == 0 else tpr) * pos)
        fp = round((0.0 if pos == n else fpr) * (n - pos))
        tn, fn = n - pos - fp, pos - tp
        if min(tp, fp, tn, fn) < 0:
            continue
        rates = {
            "accuracy": (tp + tn) / n,
            "selection_rate": (tp + fp) / n,
            "tpr": tp / pos if pos else math.nan,
            "fpr": fp / (n - pos) if n - pos else math.nan,
        }
        if all(_same(rates[k], row[k]) for k in GROUP_STATS):
            return tp, fp, tn, fn
    return None


def _same(a: float, b: Any) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return math.isnan(a)
    return _finite(b) and not math.isnan(a) and math.isclose(a, b, abs_tol=1e-6)


def intervals_from_report(report: dict[str, Any], n_resamples: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """Per-group bootstrap intervals from what the report holds (see the module docstring); `{}` when none."""
    from fairtune.metrics.bootstrap import bootstrap_intervals

    given = report.get("per_group_intervals")
    if isinstance(given, dict) and given:
        return {k: tuple(v) for k, v in given.items()}
    out: dict[str, tuple[float, float]] = {}
    for name, row in (report.get("per_group") or {}).items():
        cm = confusion_from_rates(row)
        if cm is not None:
            tp, fp, tn, fn = cm
            y = np.array([1] * (tp + fn) + [0] * (fp + tn))
            p = np.array([1] * tp + [0] * fn + [1] * fp + [0] * tn)
            ci = bootstrap_intervals(_binary_rates, [y, p], n_resamples=n_resamples, seed=seed)
            out.update({f"{name}/{k}": v for k, v in ci.items()})
        elif _finite(row.get("exact_match")) and _finite(row.get("count")) and row["count"] > 0:
            n = int(row["count"])
            hits = round(row["exact_match"] / 100.0 * n)
            scores = np.array([100.0] * hits + [0.0] * (n - hits))
            ci = bootstrap_intervals(
                lambda s: {"exact_match": float(s.mean())}, [scores], n_resamples=n_resamples, seed=seed
            )
            out.update({f"{name}/{k}": v for k, v in ci.items()})
    return out


# ---- plot ----------------------------------------------------------------------------------------------------
def _plot_stats(per_group: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(per_group.values()))
    stats = [s for s in first if s != "count" and s.split("_class_")[0] in GROUP_STATS]
    return stats or [s for s in first if s in SPAN_STATS]


def plot_per_group(report: dict[str, Any], path: Path, intervals: dict[str, Any] | None = None) -> Path | None:
    """Bars per group of the per-group rates (classification) or scores (NER/QA), with 95% bootstrap intervals.

    Every bar is labelled with its value, so a zero-height bar is visible as "0.00".
    """
    per_group = report.get("per_group") or {}
    if not per_group:
        return None
    stats = _plot_stats(per_group)
    if not stats:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intervals = intervals_from_report(report) if intervals is None else intervals
    groups = list(per_group)
    values = [[float(per_group[g].get(s, math.nan)) for s in stats] for g in groups]
    top = 100.0 if any(v > 1.0 for row in values for v in row if math.isfinite(v)) else 1.0
    x = np.arange(len(stats))
    width = 0.8 / max(len(groups), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(stats) * max(1, len(groups) / 2)), 3.8))
    for i, g in enumerate(groups):
        vals = np.array(values[i])
        err = np.zeros((2, len(stats)))
        for j, s in enumerate(stats):
            ci = intervals.get(f"{g}/{s}")
            if ci and math.isfinite(vals[j]):
                err[0, j], err[1, j] = max(vals[j] - ci[0], 0.0), max(ci[1] - vals[j], 0.0)
        n = per_group[g].get("count")
        bars = ax.bar(
            x + i * width,
            np.nan_to_num(vals, nan=0.0),
            width,
            yerr=err,
            capsize=3,
            label=f"{g} (n={n})" if n is not None else str(g),
            edgecolor="black",
            linewidth=0.6,
        )
        for bar, v in zip(bars, vals):
            text = "n/a" if not math.isfinite(v) else (f"{v:.0f}" if top > 1 else f"{v:.2f}")
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x + width * (len(groups) - 1) / 2)
    ax.set_xticklabels(stats, rotation=30, ha="right")
    ax.set_ylim(0, top * 1.12)
    ci_note = ", bars: 95% bootstrap CI" if intervals else ""
    ax.set_title(f"Per-group {'scores' if top > 1 else 'rates'} ({report.get('split', '')}{ci_note})", fontsize=9)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _label_list(out: Path, report: dict[str, Any]) -> list[str] | None:
    if isinstance(report.get("label_list"), list):
        return report["label_list"]
    try:
        config = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    labels = config.get("label_list")
    return labels if isinstance(labels, list) else None


def write_fairness_report(
    output_dir: str | Path,
    report: dict[str, Any],
    title: str | None = None,
    label_list: Sequence[str] | None = None,
) -> dict[str, str]:
    """Write the JSON (metric names as top-level keys, no `eval_` prefix), Markdown and plot; return their paths.

    `label_list` names the classes (default: the `label_list` of the run's saved fairtune_config.json).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(label_list) if label_list is not None else _label_list(out, report)
    paths = {"json": out / "fairness_report.json", "markdown": out / "fairness_report.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=float))
    paths["markdown"].write_text(render_markdown(report, title or "fairtune fairness report", labels))
    plot = plot_per_group(report, out / "fairness_per_group.png")
    if plot is not None:
        paths["plot"] = plot
    return {k: str(v) for k, v in paths.items()}
