"""One monitoring run, as `fairtune monitor` does it: read new log rows, report, write the outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairtune.monitor.config import MonitorConfig
from fairtune.monitor.monitor import FairnessMonitor
from fairtune.monitor.plots import plot_metrics
from fairtune.monitor.report import write_json, write_markdown
from fairtune.monitor.state import STATE_NAME

EXIT_OK, EXIT_BAD_INPUT, EXIT_ALERT = 0, 2, 3


@dataclass
class MonitorRun:
    """What a run wrote and found."""

    report: dict[str, Any]
    json_path: Path
    markdown_path: Path
    plots: dict[str, str]

    @property
    def exit_code(self) -> int:
        """3 when an alert fires in a window this run updated, else 0."""
        return EXIT_ALERT if self.report["alerts_firing"] else EXIT_OK


def run_monitor(
    logs: str,
    output: str | Path,
    config: MonitorConfig,
    *,
    model_dir: str | Path | None = None,
    table: str | None = None,
    reference: str | Path | None = None,
    plots: bool = True,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> MonitorRun:
    """Read the rows of `logs` not read before into the state in `output`, then write monitor.json/.md and plots."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    monitor = FairnessMonitor(
        config,
        model_dir=model_dir,
        state_path=out / STATE_NAME,
        reference=reference,
        memory_limit=memory_limit,
        threads=threads,
    )
    try:
        monitor.ingest_logs(logs, table=table)
        report = monitor.report()
        report["logs"] = logs
        figures = plot_metrics(report, out / "plots", monitor.promises, monitor.constraints) if plots else {}
        json_path = write_json(report, out / "monitor.json")
        md_path = write_markdown(report, out / "monitor.md", figures)
        monitor.state.record_run(monitor.rows_this_run, sorted(monitor.windows_this_run))
    finally:
        monitor.close()
    return MonitorRun(report, json_path, md_path, figures)
