"""Fairness monitoring of a deployed classifier from its prediction logs: windows, drift, probe, alerts.

`FairnessMonitor` (library, also for a service: `update(batch)`, `report()`), `run_monitor` (what
`fairtune monitor` runs), `MonitorConfig`/`LogColumns`/`parse_window` (settings), `MonitorError` (bad input).
Modules: config, source (log files and tables as DuckDB SQL), aggregate (the one pass over rows), state,
window_metrics, drift, probe, promises, alerts, report, plots, monitor, run.
"""

from __future__ import annotations

from fairtune._lazy import lazy_getattr

_EXPORTS = {
    "FairnessMonitor": "fairtune.monitor.monitor",
    "MonitorConfig": "fairtune.monitor.config",
    "LogColumns": "fairtune.monitor.config",
    "MonitorError": "fairtune.monitor.config",
    "Window": "fairtune.monitor.config",
    "parse_window": "fairtune.monitor.config",
    "run_monitor": "fairtune.monitor.run",
    "MonitorRun": "fairtune.monitor.run",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
