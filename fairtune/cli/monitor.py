"""`fairtune monitor`: fairness of a deployed model over windows of its prediction logs (library: fairtune.monitor)."""

from __future__ import annotations

import argparse
import sys

from fairtune.monitor.config import LogColumns, MonitorConfig, MonitorError, parse_window


def _config(args: argparse.Namespace) -> MonitorConfig:
    columns = LogColumns(
        timestamp=args.timestamp_column,
        prediction=args.prediction_column,
        score=args.score_column,
        group=args.group_column,
        label=args.label_column,
        text=args.text_column,
    )
    return MonitorConfig(
        columns=columns,
        window=parse_window(args.window),
        threshold=args.threshold,
        positive_label=args.positive_label,
        group_axis=args.group_axis,
        gap_groups=tuple(g for g in (args.gap_groups or "").split(",") if g),
        min_window_rows=args.min_window_rows,
        min_group_rows=args.min_group_rows,
        n_bootstrap=args.n_bootstrap,
        confidence=args.confidence,
        seed=args.seed,
        alerts=tuple(args.alert or ()),
        drift_psi=args.drift_psi,
        drift_alpha=args.drift_alpha,
        probe_size=args.probe_size,
        probe_axes=tuple(a for a in args.probe_axes.split(",") if a),
    )


def _monitor_command(args: argparse.Namespace) -> int:
    from fairtune.monitor.run import EXIT_BAD_INPUT, run_monitor

    try:
        run = run_monitor(
            args.logs,
            args.output,
            _config(args),
            model_dir=args.model_dir,
            table=args.table,
            reference=args.reference,
            plots=not args.no_plots,
            memory_limit=args.memory_limit,
            threads=args.threads,
        )
    except MonitorError as err:
        print(f"fairtune monitor: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = run.report
    print(
        f"Read {report['rows_processed']} new rows ({report['rows_total']} in {len(report['windows'])} windows of "
        f"{report['window']}); groups: {', '.join(report['groups'])}."
    )
    firing = [a for a in report["alerts"] if a["new"] and not a["suppressed"]]
    for alert in firing:
        print(f"ALERT [{alert['kind']}] {alert['message']}")
    suppressed = sum(1 for a in report["alerts"] if a["new"] and a["suppressed"])
    if suppressed:
        print(f"{suppressed} alert(s) on small windows suppressed (see monitor.md).")
    print(f"Wrote {run.json_path}, {run.markdown_path}" + (f" and {len(run.plots)} plots" if run.plots else ""))
    return run.exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `monitor` subcommand to the `fairtune` parser."""
    p = subparsers.add_parser(
        "monitor",
        help="fairness of a deployed model over windows of its prediction logs; exit 3 on an alert",
        description="Read prediction logs (JSONL/CSV/Parquet files or globs, or a DuckDB/SQLite table) with DuckDB, "
        "compute group fairness per window with bootstrap intervals, drift against a reference, a counterfactual "
        "probe of the model, and alerts against the model card's promises and --alert constraints. A state file in "
        "--output remembers what was read, so a cron run reads only new rows. Exit codes: 0 no alert, 3 an alert "
        "fired in a window this run updated, 2 bad input.",
    )
    p.add_argument("--logs", required=True, metavar="PATH_OR_GLOB", help="log file(s), quoted glob, or a database")
    p.add_argument("--table", default=None, help="table name when --logs is a .duckdb or .sqlite file")
    p.add_argument("--model-dir", default=None, metavar="DIR", help="model dir: card promises and the probe model")
    p.add_argument("--output", required=True, metavar="DIR", help="monitor.json, monitor.md, plots/, state file")
    p.add_argument("--window", default="1d", help="time window (1d, 6h, 30m, 1w) or a row count (10000)")
    p.add_argument(
        "--alert",
        action="append",
        metavar="EXPR",
        help="constraint that alerts when violated, e.g. 'equalized_odds_difference<=0.1' (repeatable)",
    )
    p.add_argument("--reference", default=None, metavar="FILE", help="reference data (default: the first window)")
    cols = p.add_argument_group("log columns")
    defaults = LogColumns()
    for name in ("timestamp", "prediction", "score", "group", "label", "text"):
        cols.add_argument(f"--{name}-column", default=getattr(defaults, name), help=f"(default: {name})")
    opts = p.add_argument_group("metrics")
    opts.add_argument("--threshold", type=float, default=0.5, help="decision threshold on the score")
    opts.add_argument("--positive-label", default=None, help="positive class name when classes are strings")
    opts.add_argument("--group-axis", default="gender", help="lexicon axis for groups derived from text")
    opts.add_argument("--gap-groups", default=None, metavar="A,B", help="groups the gaps compare (default: all)")
    opts.add_argument("--min-window-rows", type=int, default=500, help="smaller windows are flagged, not alerted")
    opts.add_argument("--min-group-rows", type=int, default=100, help="smaller groups are left out of the gaps")
    opts.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples (0: no intervals)")
    opts.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals")
    opts.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the probe sample")
    opts.add_argument("--drift-psi", type=float, default=0.25, help="PSI at which a significant shift alerts")
    opts.add_argument("--drift-alpha", type=float, default=0.01, help="p-value below which a shift is significant")
    opts.add_argument("--probe-size", type=int, default=64, help="counterfactual pairs per window (0: off)")
    opts.add_argument("--probe-axes", default="gender", help="axes the probe swaps, comma-separated")
    run = p.add_argument_group("run")
    run.add_argument("--no-plots", action="store_true", help="do not draw plots")
    run.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 2GB")
    run.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    p.set_defaults(func=_monitor_command)
