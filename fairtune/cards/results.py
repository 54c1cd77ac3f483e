"""The measured results as the card shows them: before/after rows, evaluation, per-group, leakage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fairtune.cards.base import COUNT_KEYS, EVAL_RESULTS_NAME, _is_number
from fairtune.cards.hub_ids import _display_name
from fairtune.cards.run import RunFiles, _where
from fairtune.cards.tables import _metric_keys, metric_info


def _ci(report: Mapping[str, Any] | None, key: str) -> list[float] | None:
    if not report:
        return None
    value = report.get(f"{key}_ci")
    intervals = report.get("intervals")  # results.json of `fairtune evaluate`
    if value is None and isinstance(intervals, Mapping):
        value = intervals.get(key)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
        return [float(value[0]), float(value[1])]
    return None


def _change(key: str, before: Any, after: Any, before_ci: Any, after_ci: Any) -> str:
    if not (_is_number(before) and _is_number(after)):
        return "n/a"
    delta = after - before
    if delta == 0:
        return "no change"
    direction = metric_info(key).direction
    text = f"{delta:+.4f}"
    if direction:
        text += " (better)" if delta * direction > 0 else " (worse)"
    if before_ci and after_ci:
        overlap = before_ci[0] <= after_ci[1] and after_ci[0] <= before_ci[1]
        text += "; intervals overlap" if overlap else "; intervals do not overlap"
    return text


def _results(run: RunFiles, baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    report = run.report
    before_report = (baseline or {}).get("report") or {}
    rows = []
    for key in _metric_keys(report):
        info = metric_info(key)
        after, after_ci = report[key], _ci(report, key)
        before = before_report.get(key) if _is_number(before_report.get(key)) else None
        before_ci = _ci(before_report, key)
        rows.append(
            {
                "key": key,
                "name": info.name,
                "after": after,
                "after_ci": after_ci,
                "before": before,
                "before_ci": before_ci,
                "change": _change(key, before, after, before_ci, after_ci),
            }
        )
    headline_names = {"accuracy": "accuracy", "macro_f1": "macro F1", "f1": "F1", "exact_match": "exact match"}
    headline = [f"{headline_names[r['key']]} {r['after']:.4f}" for r in rows if r["key"] in headline_names]
    headline += [
        f"a demographic parity difference of {r['after']:.4f}"
        for r in rows
        if r["key"] == "demographic_parity_difference"
    ]
    ci_note = None
    level = (report or {}).get("ci_level") or (report or {}).get("confidence_level")
    if isinstance((report or {}).get("interval_note"), str):
        ci_note = f"intervals in brackets: {report['interval_note']}"
    elif _is_number(level):
        ci_note = f"brackets give {level * 100 if level <= 1 else level:g}% confidence intervals"
    elif any(r["after_ci"] for r in rows):
        ci_note = "brackets give confidence intervals"
    baseline_view = None
    if baseline:
        description = f"`{baseline.get('source')}`"
        if baseline.get("model"):
            description += f", a run of `{baseline['model']}`"
        if baseline.get("debiased") is False:
            description += " trained without debiasing"
        elif baseline.get("debiased"):
            description += " (itself trained with some debiasing)"
        notes = []
        this_where = _where(report or {}, run.config)
        if baseline.get("evaluated_on") and baseline["evaluated_on"] != this_where:
            notes.append(
                f"**Check comparability**: the baseline was measured on {baseline['evaluated_on']}, "
                f"this model on {this_where}."
            )
        missing = [r["name"] for r in rows if r["before"] is None]
        if missing:
            notes.append(f"The baseline report has no value for: {', '.join(missing)}.")
        baseline_view = {"description": description, "notes": notes}
    return {
        "rows": rows,
        "where": _where(report or {}, run.config),
        "ci_note": ci_note,
        "baseline": baseline_view,
        "headline": _join(headline) if headline else None,
    }


def _join(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _evaluation(run: RunFiles, primary_keys: Iterable[str]) -> dict[str, Any]:
    if not run.evaluation:
        return {"rows": []}
    primary = set(primary_keys)
    before = (
        run.evaluation.get("baseline_metrics") if isinstance(run.evaluation.get("baseline_metrics"), Mapping) else {}
    )
    rows = []
    for key in _metric_keys(run.evaluation):
        if key in primary:
            continue
        after, after_ci = run.evaluation[key], _ci(run.evaluation, key)
        value = before.get(key) if _is_number(before.get(key)) else None
        rows.append(
            {
                "key": key,
                "name": metric_info(key).name,
                "after": after,
                "after_ci": after_ci,
                "before": value,
                "change": _change(key, value, after, None, after_ci),
            }
        )
    source = run.evaluation_path.relative_to(run.model_dir).as_posix() if run.evaluation_path else EVAL_RESULTS_NAME
    where = (
        _where(run.evaluation, run.config) if run.evaluation.get("split") or run.evaluation.get("dataset") else None
    )
    baseline = _display_name(run.evaluation.get("baseline")) if before else None
    note = run.evaluation.get("interval_note")
    return {"rows": rows, "source": source, "where": where, "baseline": baseline, "interval_note": note}


def _per_group(report: Mapping[str, Any] | None) -> dict[str, Any]:
    per_group = (report or {}).get("per_group")
    if not isinstance(per_group, Mapping) or not per_group:
        return {"columns": [], "rows": []}
    flat: dict[str, Mapping[str, Any]] = {}
    for name, value in per_group.items():
        if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            for sub, stats in value.items():  # nested by axis: {"gender": {"female": {...}}}
                flat[f"{name}: {sub}"] = stats
        elif isinstance(value, Mapping):
            flat[str(name)] = value
        elif _is_number(value):
            flat[str(name)] = {"value": value}
    columns: list[str] = []
    for stats in flat.values():
        for key, value in stats.items():
            if key not in columns and (_is_number(value) or value is None):
                columns.append(key)
    columns.sort(key=lambda c: c not in COUNT_KEYS)
    rows = [{"group": group, "values": [stats.get(c) for c in columns]} for group, stats in flat.items()]
    return {"columns": columns, "rows": rows}


def _leakage(run: RunFiles, baseline: Mapping[str, Any] | None) -> dict[str, Any] | None:
    report = run.report or {}
    accuracy = report.get("leakage_probe_accuracy")
    if not _is_number(accuracy):
        return None
    majority = report.get("leakage_probe_majority_baseline")
    before = ((baseline or {}).get("report") or {}).get("leakage_probe_accuracy")
    return {
        "accuracy": accuracy,
        "accuracy_ci": _ci(report, "leakage_probe_accuracy"),
        "majority": majority if _is_number(majority) else None,
        "gap": accuracy - majority if _is_number(majority) else None,
        "at_majority": _at_majority(accuracy, majority, _ci(report, "leakage_probe_accuracy")),
        "before": before if _is_number(before) else None,
    }


def _at_majority(accuracy: float, majority: Any, interval: list[float] | None) -> bool | None:
    """Whether the probe does no better than the majority guess (within its interval, or within 0.01 without one)."""
    if not _is_number(majority):
        return None
    return interval[0] <= majority if interval else accuracy - majority <= 0.01
