"""The monitoring report: every window's metrics, intervals, drift, probe and alerts, as JSON and Markdown."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fairtune.monitor.alerts import window_alerts
from fairtune.monitor.drift import window_drift
from fairtune.monitor.probe import probe_summary
from fairtune.monitor.window_metrics import WINDOW_METRICS, window_metrics

if TYPE_CHECKING:
    from fairtune.monitor.monitor import FairnessMonitor

GROUP_SOURCES = {
    "logged": "logged in the group column",
    "text": "derived from the logged text with group_from_lexicon (axis {axis}), as training with "
    "group_from_lexicon does: a text's group is the lexicon terms it mentions, not the person's identity",
    "none": "not available (no group or text column): group metrics and group drift are not measured",
}


def window_label(key: int, config: Any) -> tuple[str, str | None, str | None]:
    """(label, start, end) of a window key."""
    if config.window.is_time:
        start = datetime.fromtimestamp(int(key), tz=timezone.utc)
        end = start + timedelta(seconds=int(config.window.seconds))
        fmt = "%Y-%m-%d" if config.window.seconds % 86400 == 0 else "%Y-%m-%d %H:%M"
        return start.strftime(fmt), start.isoformat(), end.isoformat()
    n = int(config.window.rows)
    return f"rows {key * n}-{(key + 1) * n - 1}", None, None


def build_report(monitor: FairnessMonitor) -> dict[str, Any]:
    """The report of everything the monitor's state holds (see module doc)."""
    cfg = monitor.config
    state = monitor.state
    cells, hist, probe = state.table("cells"), state.table("hist"), state.table("probe").set_index("win")
    ref_cells, ref_hist = state.table("ref_cells"), state.table("ref_hist")
    keys = sorted(int(k) for k in cells["win"].dropna().unique())
    reference: dict[str, Any]
    first = None
    if len(ref_cells):
        reference = {"kind": "file", "path": state.get_meta("reference_path"), "rows": int(ref_cells["n"].sum())}
    elif keys:
        first = keys[0]
        ref_cells, ref_hist = cells[cells["win"] == first], hist[hist["win"] == first]
        reference = {"kind": "first window", "window": window_label(first, cfg)[0], "rows": int(ref_cells["n"].sum())}
    else:
        reference = {"kind": "none"}
    cells_by = {int(k): v for k, v in cells.groupby("win")}
    hist_by = {int(k): v for k, v in hist.groupby("win")}
    windows = []
    for key in keys:
        label, start, end = window_label(key, cfg)
        c, h = cells_by.get(key, cells.iloc[:0]), hist_by.get(key, hist.iloc[:0])
        entry: dict[str, Any] = {
            "window": label,
            "key": key,
            "start": start,
            "end": end,
            "updated": key in monitor.windows_this_run,
        }
        entry.update(
            window_metrics(
                c,
                gap_groups=cfg.gap_groups,
                min_group_rows=cfg.min_group_rows,
                n_bootstrap=cfg.n_bootstrap,
                confidence=cfg.confidence,
                seed=cfg.seed,
            )
        )
        entry["small"] = entry["rows"] < cfg.min_window_rows
        if entry["small"]:
            entry["small_reason"] = f"{entry['rows']} rows < {cfg.min_window_rows}"
        entry["small_labelled"] = 0 < entry["labelled_rows"] < cfg.min_window_rows
        if entry["small_labelled"]:
            entry["small_labelled_reason"] = f"{entry['labelled_rows']} labelled rows < {cfg.min_window_rows}"
        if key == first:
            entry["drift"] = None
            entry["is_reference"] = True
        elif reference["kind"] != "none":
            entry["drift"] = window_drift(
                c,
                h,
                ref_cells,
                ref_hist,
                bins=cfg.score_bins,
                psi_limit=cfg.drift_psi,
                alpha=cfg.drift_alpha,
                min_rows=cfg.min_group_rows,
            )
        entry["probe"] = probe_summary(probe.loc[key] if key in probe.index else None, cfg.confidence) or None
        entry["alerts"] = window_alerts(entry, monitor.promises, monitor.constraints)
        windows.append(entry)
    alerts = [dict(a, new=w["updated"]) for w in windows for a in w["alerts"]]
    sources = sorted(monitor.groups_source) or ["none"]
    notes = list(monitor.notes)
    notes += [f"Groups: {GROUP_SOURCES[s].format(axis=cfg.group_axis)}." for s in sources]
    if any(w["small"] for w in windows):
        notes.append(
            f"Windows with fewer than {cfg.min_window_rows} rows are flagged small; their alerts are suppressed. "
            f"Groups with fewer than {cfg.min_group_rows} rows (labelled rows for labelled metrics) are listed but "
            "left out of the gaps."
        )
    return {
        "fairtune_monitor": 1,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "window": cfg.window.spec,
        "groups": sources,
        "rows_processed": monitor.rows_this_run,
        "rows_total": int(cells["n"].sum()) if len(cells) else 0,
        "runs_before": state.run_count(),
        "reference": reference,
        "promises": monitor.promises,
        "constraints": [str(c) for c in monitor.constraints],
        "confidence": cfg.confidence,
        "n_bootstrap": cfg.n_bootstrap,
        "windows": windows,
        "alerts": alerts,
        "alerts_firing": sum(1 for a in alerts if a["new"] and not a["suppressed"]),
        "notes": notes,
    }


def _clean(value: Any) -> Any:
    """NaN/inf -> None, tuples -> lists, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(report: dict[str, Any], path: Path) -> Path:
    """monitor.json (strict JSON: NaN written as null)."""
    path.write_text(json.dumps(_clean(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _fmt(value: Any, interval: Any = None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    if interval:
        text += f" [{interval[0]:.4f}, {interval[1]:.4f}]"
    return text


def markdown(report: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """monitor.md: alerts first, then one table of windows by metric, drift, probe and notes."""
    lines = ["# Fairness monitoring report", ""]
    firing = [a for a in report["alerts"] if a["new"] and not a["suppressed"]]
    lines.append(
        f"Window `{report['window']}`; {report['rows_processed']} new rows read, {report['rows_total']} in "
        f"{len(report['windows'])} windows. Reference: {report['reference']['kind']}"
        + (
            f" ({report['reference'].get('window') or report['reference'].get('path')})"
            if report["reference"].get("rows")
            else ""
        )
        + f". Intervals: {report['confidence'] * 100:g}% bootstrap ({report['n_bootstrap']} resamples)."
    )
    lines += ["", f"## Alerts ({len(firing)} firing)", ""]
    if report["alerts"]:
        for a in report["alerts"]:
            state = "suppressed" if a["suppressed"] else ("**firing**" if a["new"] else "seen before")
            lines.append(f"- [{a['kind']}] {a['message']} ({state})")
    else:
        lines.append("No alerts.")
    if report["promises"]:
        lines += ["", "Promised by the model card: " + ", ".join(f"{k} {v:g}" for k, v in report["promises"].items())]
    if report["constraints"]:
        lines += ["", "Constraints: " + ", ".join(f"`{c}`" for c in report["constraints"])]
    metrics = [m for m in WINDOW_METRICS if any(m in w["metrics"] for w in report["windows"])]
    probe = any(w.get("probe") for w in report["windows"])
    header = ["window", "rows", "labelled", *metrics] + (["flip_rate", "ctf_gap"] if probe else [])
    lines += ["", "## Windows", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for w in report["windows"]:
        name = w["window"] + (" (small)" if w["small"] else "") + (" (reference)" if w.get("is_reference") else "")
        cells = [name, str(w["rows"]), str(w["labelled_rows"])]
        cells += [_fmt(w["metrics"].get(m), w["intervals"].get(m)) for m in metrics]
        if probe:
            p = w.get("probe") or {}
            cells += [_fmt(p.get("flip_rate"), p.get("intervals", {}).get("flip_rate")), _fmt(p.get("ctf_gap"))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Rows per group", ""]
    groups = sorted({g for w in report["windows"] for g in w["per_group"]}, key=lambda x: (len(x), x))
    if groups:
        lines += ["| window | " + " | ".join(groups) + " |", "|" + "---|" * (len(groups) + 1)]
        for w in report["windows"]:
            row = [str(w["per_group"].get(g, {}).get("count", 0)) for g in groups]
            lines.append(f"| {w['window']} | " + " | ".join(row) + " |")
    else:
        lines.append("No groups.")
    drift_rows = []
    for w in report["windows"]:
        d = w.get("drift") or {}
        mix = d.get("group_mix")
        score = (d.get("score") or {}).get("(all)")
        if mix or score:
            drift_rows.append(
                f"| {w['window']} | {_fmt(mix and mix['psi'])} | {_fmt(mix and mix['p_value'])} | "
                f"{_fmt(score and score['psi'])} | {_fmt(score and score['ks'])} | {_fmt(score and score['p_value'])} |"
            )
    if drift_rows:
        lines += [
            "",
            "## Drift against the reference",
            "",
            "| window | group mix PSI | chi-square p | score PSI | KS D | KS p |",
            "|---|---|---|---|---|---|",
            *drift_rows,
            "",
            "Per-group base-rate and score drift are in monitor.json.",
        ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{m}]({p})" for m, p in plots.items()]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def write_markdown(report: dict[str, Any], path: Path, plots: dict[str, str] | None = None) -> Path:
    """monitor.md."""
    path.write_text(markdown(report, plots), encoding="utf-8")
    return path


def windows_frame(report: dict[str, Any]) -> pd.DataFrame:
    """One row per window and metric with value, interval and alert flags (what the plots draw)."""
    rows = []
    for w in report["windows"]:
        values = dict(w["metrics"])
        intervals = dict(w["intervals"])
        if w.get("probe"):
            values.update({k: w["probe"][k] for k in ("flip_rate", "ctf_gap")})
            intervals.update(w["probe"].get("intervals", {}))
        for metric, value in values.items():
            lo, hi = intervals.get(metric, (math.nan, math.nan))
            fired = [a for a in w["alerts"] if a["metric"] == metric]
            rows.append(
                {
                    "window": w["window"],
                    "key": w["key"],
                    "metric": metric,
                    "value": value,
                    "low": lo,
                    "high": hi,
                    "small": w["small"],
                    "alert": any(not a["suppressed"] for a in fired),
                    "suppressed": any(a["suppressed"] for a in fired),
                }
            )
    return pd.DataFrame(rows)
