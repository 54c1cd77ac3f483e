"""Fairness monitoring of a deployed classifier from its prediction logs: windows, drift, probe, alerts.

`FairnessMonitor` (library, also for a service: `update(batch)`, `report()`), `run_monitor` (what
`fairtune monitor` runs), `MonitorConfig`/`LogColumns`/`parse_window` (settings), `MonitorError` (bad input).
Modules: config, source (log files and tables as DuckDB SQL), aggregate (the one pass over rows), state,
window_metrics, drift, probe, promises, alerts, report, plots, monitor, run.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fairtune.monitor' has no attribute {name!r}")
