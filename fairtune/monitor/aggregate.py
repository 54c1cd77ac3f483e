"""One SQL pass over new log rows: additive per-window statistics, a score histogram, per-file bookkeeping.

Everything kept is a sum, so a window that spans two cron runs is the sum of its parts, and memory does not
grow with the number of rows. The three results come from one `GROUPING SETS` query:

- cells: per (window, group, label, prediction) the row count, score sums and residual sums;
- hist: per (window, group, score bin) the row count (PSI and the KS test are computed on these bins);
- files: per file the rows read, the last position and the count of unreadable values per column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from fairtune.monitor.config import MonitorConfig, MonitorError

#: rows whose value cannot be read, per canonical column (the `_raw` text is only computed for error messages)
BAD = {
    "p": "(_p IS NULL OR _p NOT IN (0, 1))",
    "y": "(_y IS NOT NULL AND _y NOT IN (0, 1))",
    "s": "(_s_logged AND (_s IS NULL OR _s < 0 OR _s > 1))",
    "ts": "(_ts IS NULL)",
}
#: Monday 2000-01-03 00:00 UTC, the origin of time windows (so `1w` windows start on Mondays)
WINDOW_ORIGIN = 946857600


@dataclass
class Aggregates:
    """The additive statistics of one batch of rows."""

    cells: pd.DataFrame
    hist: pd.DataFrame
    files: pd.DataFrame

    @property
    def rows(self) -> int:
        """Rows aggregated."""
        return int(self.files["n"].sum()) if len(self.files) else 0


def window_expr(config: MonitorConfig, row_offset_sql: str) -> str:
    """SQL of the window key: epoch seconds of the window start, or the row-window index.

    `row_offset_sql` is the global index of each row (for row-count windows).
    """
    if config.window.is_time:
        w = int(config.window.seconds or 0)
        return f"({WINDOW_ORIGIN} + CAST(floor((epoch(_ts) - {WINDOW_ORIGIN}) / {w}) AS BIGINT) * {w})"
    return f"CAST(floor(({row_offset_sql}) / {int(config.window.rows or 1)}) AS BIGINT)"


def aggregate_sql(rows_sql: str, config: MonitorConfig) -> str:
    """The GROUPING SETS query over canonical rows that carry `_win`."""
    b = int(config.score_bins)
    bin_expr = (
        f"CASE WHEN _s IS NULL OR _s < 0 OR _s > 1 THEN NULL ELSE least(CAST(floor(_s * {b}) AS INTEGER), {b - 1}) END"
    )
    bad_p, bad_y, bad_s = BAD["p"], BAD["y"], BAD["s"]
    bad_ts = BAD["ts"] if config.window.is_time else "FALSE"
    ok_y = "CASE WHEN _y IN (0, 1) THEN _y END"
    return f"""
        WITH r AS (SELECT *, {bin_expr} AS _bin FROM ({rows_sql}) AS q)
        SELECT
            GROUPING(_file) = 0 AS is_file, GROUPING(_bin) = 0 AS is_hist,
            _win AS win, _g AS grp, _y AS y, _p AS p, _bin AS bin, _file AS file,
            count(*) AS n,
            count(_s) AS s_n, sum(_s) AS s_sum,
            count({ok_y} - _s) AS r_n, sum({ok_y} - _s) AS r_sum, sum(power({ok_y} - _s, 2)) AS r_sq,
            max(_pos) AS max_pos,
            count_if({bad_p}) AS bad_p, count_if({bad_y}) AS bad_y, count_if({bad_s}) AS bad_s,
            count_if({bad_ts}) AS bad_ts,
            min(_ts) AS ts_min, max(_ts) AS ts_max
        FROM r
        GROUP BY GROUPING SETS ((_win, _g, _y, _p), (_win, _g, _bin), (_file))
    """


def run_aggregate(con: Any, rows_sql: str, config: MonitorConfig, columns_for_errors: dict[str, str]) -> Aggregates:
    """Run the aggregation and validate the values; raises MonitorError naming the file and column."""
    import duckdb

    try:
        df = con.execute(aggregate_sql(rows_sql, config)).fetch_df()
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0]
        raise MonitorError(f"the logs cannot be read ({first}); fix the file or column named there.") from None
    files = df[df["is_file"]].reset_index(drop=True)
    check_values(con, rows_sql, files, config, columns_for_errors)
    cells = df[~df["is_file"] & ~df["is_hist"]][["win", "grp", "y", "p", "n", "s_n", "s_sum", "r_n", "r_sum", "r_sq"]]
    hist = df[df["is_hist"] & df["bin"].notna()][["win", "grp", "bin", "n"]]
    cells = cells.astype({"n": "int64", "s_n": "int64", "r_n": "int64"}).reset_index(drop=True)
    hist = hist.astype({"bin": "int64", "n": "int64"}).reset_index(drop=True)
    return Aggregates(cells=cells, hist=hist, files=files[["file", "n", "max_pos", "ts_min", "ts_max"]])


def _example(con: Any, rows_sql: str, file: str, column: str) -> str | None:
    """One unreadable logged value of `column` in `file`, for the error message."""
    raw = {"p": "_p_raw", "y": "_y_raw", "s": "_s_raw"}[column]
    rows = con.execute(
        f"SELECT min({raw}) FROM ({rows_sql}) AS q WHERE _file = ? AND {BAD[column]}", [file]
    ).fetchall()
    return rows[0][0] if rows else None


def check_values(con: Any, rows_sql: str, files: pd.DataFrame, config: MonitorConfig, names: dict[str, str]) -> None:
    """Raise on the first file holding values the monitor cannot read."""
    cols = config.columns
    for row in files.itertuples(index=False):
        if row.bad_ts:
            raise MonitorError(
                f"{row.file}: {row.bad_ts} rows have no readable {cols.timestamp!r} (ISO time or epoch seconds); fix "
                "them, pass --timestamp-column, or use a row-count window such as --window 10000."
            )
        if row.bad_p and names["prediction"] == cols.score:
            raise MonitorError(
                f"{row.file}: {row.bad_p} rows have no readable {cols.score!r} to threshold (e.g. "
                f"{_example(con, rows_sql, row.file, 'p')!r}); log the positive-class probability of every row, or "
                "the predicted class in the column named by --prediction-column."
            )
        if row.bad_p:
            raise MonitorError(
                f"{row.file}: column {names['prediction']!r} has {row.bad_p} values that are not a class 0/1 (e.g. "
                f"{_example(con, rows_sql, row.file, 'p')!r}); log 0/1, pass --positive-label NAME for string "
                "classes, or monitor a positive-class probability with --score-column (binary classifiers only)."
            )
        if row.bad_y:
            raise MonitorError(
                f"{row.file}: column {cols.label!r} has {row.bad_y} values that are not a class 0/1 (e.g. "
                f"{_example(con, rows_sql, row.file, 'y')!r}); log 0/1 (or empty while the label is unknown), or "
                "pass --positive-label NAME."
            )
        if row.bad_s:
            raise MonitorError(
                f"{row.file}: column {cols.score!r} has {row.bad_s} values that are not a probability in [0, 1] "
                f"(e.g. {_example(con, rows_sql, row.file, 's')!r}); log the positive-class probability, or pass "
                "--score-column."
            )
