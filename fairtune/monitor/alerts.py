"""When a window raises an alert: a promise broken significantly, a constraint violated, or drift.

- promise: the card promised value `v` for a metric; a lower-is-better metric alerts when the window's whole
  confidence interval lies above `v` (its lower bound > v), a higher-is-better one when it lies below.
- constraint: `--alert "equalized_odds_difference<=0.1"` (the `sweep --select` syntax) alerts when the window's
  value violates it.
- drift: group mix, a group's base rate or a group's score distribution moved (PSI and p-value, see `drift`).

Alerts of small windows (fewer than `min_window_rows` rows, or fewer than two groups large enough for the gaps)
are reported with `suppressed: true` and do not set the exit code: a gap over a handful of rows is noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fairtune.cards import metric_info
from fairtune.monitor.config import MonitorError
from fairtune.monitor.window_metrics import LABELLED, WINDOW_METRICS
from fairtune.selection import Constraint, higher_is_better, parse_constraints

PROBE_METRICS = ("flip_rate", "ctf_gap")
DRIFT_METRICS = ("group_mix_psi", "score_psi")
KNOWN_METRICS = (*WINDOW_METRICS, *PROBE_METRICS, *DRIFT_METRICS)


def parse_alerts(exprs: Sequence[str]) -> list[Constraint]:
    """Constraints from `--alert` expressions; an unknown metric name is an error listing the known ones."""
    out: list[Constraint] = []
    for expr in exprs:
        try:
            constraints = parse_constraints(expr)
        except ValueError as err:
            raise MonitorError(f"--alert {expr!r}: {err}") from None
        for c in constraints:
            if c.metric not in KNOWN_METRICS:
                raise MonitorError(
                    f"--alert {expr!r}: the monitor does not measure {c.metric!r}; use one of "
                    f"{', '.join(KNOWN_METRICS)}."
                )
        out += constraints
    return out


def _lower_is_better(metric: str) -> bool:
    info = metric_info(metric)
    return info.direction < 0 if info.direction else not higher_is_better(metric)


def window_values(window: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The numbers alerts look at, and their intervals: metrics, probe and drift summaries."""
    values = dict(window.get("metrics", {}))
    intervals = dict(window.get("intervals", {}))
    probe = window.get("probe") or {}
    for key in PROBE_METRICS:
        if key in probe:
            values[key] = probe[key]
            if key in probe.get("intervals", {}):
                intervals[key] = probe["intervals"][key]
    drift = window.get("drift") or {}
    if "group_mix" in drift:
        values["group_mix_psi"] = drift["group_mix"]["psi"]
    if "(all)" in drift.get("score", {}):
        values["score_psi"] = drift["score"]["(all)"]["psi"]
    return values, intervals


def window_alerts(
    window: Mapping[str, Any], promises: Mapping[str, float], constraints: Sequence[Constraint]
) -> list[dict[str, Any]]:
    """Every alert of one window (see module doc), each with a one-line message."""
    values, intervals = window_values(window)
    label = window["window"]
    out: list[dict[str, Any]] = []

    def add(kind: str, metric: str, message: str, **extra: Any) -> None:
        suppressed = _suppressed(window, metric)
        if suppressed:
            message += f" (suppressed: {suppressed})"
        out.append(
            {
                "window": label,
                "kind": kind,
                "metric": metric,
                "message": message,
                "suppressed": bool(suppressed),
                "value": values.get(metric),
                **extra,
            }
        )

    for metric, promised in promises.items():
        if metric not in values or metric not in intervals:
            continue
        lo, hi = intervals[metric]
        worse = lo > promised if _lower_is_better(metric) else hi < promised
        if worse:
            add(
                "promise",
                metric,
                f"{label}: {metric} {values[metric]:.4f} [{lo:.4f}, {hi:.4f}] is significantly "
                f"worse than the card's {promised:.4f}",
                interval=[lo, hi],
                promised=promised,
            )
    for c in constraints:
        v = values.get(c.metric)
        if v is None or not math.isfinite(v):
            continue
        if not c.satisfied(values):
            add(
                "constraint",
                c.metric,
                f"{label}: {c.metric} {v:.4f} violates {c}",
                constraint=str(c),
                interval=intervals.get(c.metric),
            )
    drift = window.get("drift") or {}
    for part, entries in (
        ("group_mix", {"": drift.get("group_mix")}),
        ("base_rate", drift.get("base_rate", {})),
        ("score", drift.get("score", {})),
    ):
        for group, entry in (entries or {}).items():
            if entry and entry.get("drift"):
                what = part.replace("_", " ") + (f" of {group}" if group else "")
                add(
                    "drift",
                    f"{part}_psi",
                    f"{label}: {what} drifted (PSI {entry['psi']:.3f}, {entry['test']} p={entry['p_value']:.2g})",
                    group=group or None,
                    psi=entry["psi"],
                    p_value=entry["p_value"],
                )
    return out


def _suppressed(window: Mapping[str, Any], metric: str) -> str | None:
    """Why an alert on `metric` in this window is not to be acted on, or None."""
    if window.get("small"):
        return window.get("small_reason") or "small window"
    if metric in (*LABELLED, "bias_coefficient_gap") and window.get("small_labelled"):
        return window.get("small_labelled_reason") or "too few labelled rows"
    if metric in PROBE_METRICS and (window.get("probe") or {}).get("n_pairs", 0) < 30:
        return "fewer than 30 probe pairs"
    return None
