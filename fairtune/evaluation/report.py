"""Writing results.json (headline metrics as top-level keys) and report.md (one table per suite)."""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from fairtune.evaluation.base import SuiteResult
from fairtune.evaluation.formatting import fmt, fmt_change, fmt_interval


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def headline(results: list[SuiteResult]) -> dict[str, float]:
    """All suites' headline metrics in one flat dict."""
    out: dict[str, float] = {}
    for r in results:
        out.update(r.metrics)
    return out


def build_results(
    results: list[SuiteResult], meta: dict[str, Any], baseline: list[SuiteResult] | None = None
) -> dict[str, Any]:
    """The results.json payload: metadata, headline metrics at top level, intervals, per-suite details."""
    payload: dict[str, Any] = {**meta, "suites": [r.suite for r in results]}
    payload.update(headline(results))
    payload["intervals"] = {k: list(v) for r in results for k, v in r.intervals.items() if k in r.metrics}
    payload["details"] = {r.suite: r.to_dict() for r in results}
    if baseline is not None:
        base = headline(baseline)
        payload["baseline_metrics"] = base
        payload["change"] = {
            k: v - base[k] for k, v in headline(results).items() if isinstance(base.get(k), (int, float))
        }
        payload["baseline_details"] = {r.suite: r.to_dict() for r in baseline}
    return _clean(payload)


def write_results(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write results.json (sorted keys, NaN-free)."""
    path = Path(path)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


def read_results(path: str | Path) -> list[SuiteResult]:
    """Suite results from an earlier results.json (used as a baseline)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [SuiteResult.from_dict(_restore(d)) for d in data.get("details", {}).values()]


def _restore(d: Any) -> Any:
    """None -> NaN for numbers read back from JSON."""
    if isinstance(d, dict):
        return {k: _restore(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_restore(v) for v in d]
    return math.nan if d is None else d


def _suite_table(result: SuiteResult, base: SuiteResult | None) -> list[str]:
    """Markdown table of a suite's headline metrics with intervals (and baseline + change)."""
    head = "| metric | value | 95% CI |" + (" baseline | change |" if base else "")
    sep = "|---|---:|---|" + ("---:|---:|" if base else "")
    lines = [head, sep]
    for k, v in result.metrics.items():
        row = f"| `{k}` | {fmt(v)} | {fmt_interval(result.intervals.get(k))} |"
        if base:
            bv = base.metrics.get(k)
            row += f" {fmt(bv)} | {fmt_change(v, bv)} |"
        lines.append(row)
    return lines


def _breakdown_table(result: SuiteResult, base: SuiteResult | None) -> list[str]:
    """Markdown table of the per-group (bias type, category, ...) breakdown, intervals beside values."""
    cols: list[str] = []
    for row in result.breakdown.values():
        cols.extend(c for c in row if c not in cols and not isinstance(row[c], (dict, list)))
    lines = [f"| {result.breakdown_label} | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in result.breakdown.items():
        cells = []
        for c in cols:
            cell = fmt(row.get(c))
            ci = "" if c == "count" else fmt_interval(result.intervals.get(f"{name}/{c}"))
            if ci:
                cell += f" {ci}"
            if base is not None and c in base.breakdown.get(name, {}) and c != "count":
                cell += f" (was {fmt(base.breakdown[name][c])})"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _thresholds_section(result: SuiteResult) -> list[str]:
    """Before/after table when per-group thresholds were applied."""
    raw = result.details.get("without_thresholds")
    if not raw:
        return []
    lines = [
        "",
        "#### Effect of the post-hoc thresholds (this data)",
        "",
        "| metric | argmax | with thresholds | change |",
        "|---|---:|---:|---:|",
    ]
    for k, v in raw.items():
        lines.append(f"| `{k}` | {fmt(v)} | {fmt(result.metrics.get(k))} | {fmt_change(result.metrics.get(k), v)} |")
    lines.append("")
    lines.append(
        "A plain transformers pipeline ignores these thresholds; use `fairtune.posthoc.thresholds.predict_with_thresholds`."
    )
    return lines


def render_report(
    results: list[SuiteResult],
    meta: dict[str, Any],
    baseline: list[SuiteResult] | None = None,
    plots: dict[str, str] | None = None,
) -> str:
    """The report.md text."""
    plots = plots or {}
    base_by = {r.suite: r for r in baseline or []}
    lines = ["# fairtune evaluation report", ""]
    lines.append(f"- model: `{meta.get('model')}`")
    if meta.get("baseline"):
        lines.append(f"- baseline: `{meta['baseline']}`")
    lines.append(f"- suites: {', '.join(r.suite for r in results)}")
    lines.append(
        f"- date: {meta.get('date', _dt.datetime.now().isoformat(timespec='seconds'))}; intervals: {meta.get('interval_note', '95% bootstrap')}"
    )
    if "summary" in plots:
        lines += ["", f"![before/after]({plots['summary']})"]
    for r in results:
        base = base_by.get(r.suite)
        lines += ["", f"## {r.suite}", ""]
        lines += [f"> {n}" for n in r.notes] + ([""] if r.notes else [])
        lines += _suite_table(r, base)
        if r.breakdown:
            lines += ["", f"### by {r.breakdown_label}", ""]
            lines += _breakdown_table(r, base)
        lines += _thresholds_section(r)
        if r.suite in plots:
            lines += ["", f"![{r.suite}]({plots[r.suite]})"]
    return "\n".join(lines) + "\n"
