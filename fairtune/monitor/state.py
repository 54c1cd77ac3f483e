"""The monitor's memory: a small DuckDB file with the additive statistics of every window seen and the rows read.

A cron run adds the statistics of new rows to those stored and records how far it read each file, in one
transaction; a crash leaves the previous state intact. The settings that shape the statistics (window, columns,
threshold, bins) are stored too: a run with other settings is refused instead of mixing incompatible sums.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from fairtune.monitor.config import MonitorError

STATE_NAME = "monitor_state.duckdb"
_CELL_SUMS = (
    "sum(n) AS n, sum(s_n) AS s_n, sum(s_sum) AS s_sum, sum(r_n) AS r_n, sum(r_sum) AS r_sum, sum(r_sq) AS r_sq"
)
_SCHEMA = {
    "meta": "key VARCHAR PRIMARY KEY, value VARCHAR",
    "files": "path VARCHAR PRIMARY KEY, size BIGINT, mtime DOUBLE, rows_done BIGINT",
    "cells": "win BIGINT, grp VARCHAR, y INTEGER, p INTEGER, n BIGINT, s_n BIGINT, s_sum DOUBLE, r_n BIGINT, "
    "r_sum DOUBLE, r_sq DOUBLE",
    "hist": "win BIGINT, grp VARCHAR, bin INTEGER, n BIGINT",
    "probe": "win BIGINT, n_pairs BIGINT, n_flips BIGINT, gap_sum DOUBLE, gap_sq DOUBLE",
    "ref_cells": "win BIGINT, grp VARCHAR, y INTEGER, p INTEGER, n BIGINT, s_n BIGINT, s_sum DOUBLE, r_n BIGINT, "
    "r_sum DOUBLE, r_sq DOUBLE",
    "ref_hist": "win BIGINT, grp VARCHAR, bin INTEGER, n BIGINT",
    "runs": "run INTEGER, finished VARCHAR, rows BIGINT, windows VARCHAR",
}


class MonitorState:
    """Stored window statistics and read positions; `path=None` keeps them in memory (the Python API)."""

    def __init__(self, path: str | Path | None = None, *, memory_limit: str | None = None, threads: int | None = None):
        """Open (or create) the state database; the same connection runs the log queries."""
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path) if self.path else ":memory:")
        except duckdb.Error as err:
            raise MonitorError(
                f"state file {self.path}: cannot open it ({err}); remove it or use another --output."
            ) from None
        self.con.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        for table, columns in _SCHEMA.items():
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")

    def close(self) -> None:
        """Close the database."""
        self.con.close()

    # settings --------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        """A stored JSON value, or None."""
        rows = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        row = rows[0] if rows else None
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value."""
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, json.dumps(value, sort_keys=True)])

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Refuse settings that differ from those the stored statistics were built with."""
        stored = self.get_meta("settings")
        if stored is None:
            self.set_meta("settings", settings)
            return
        changed = {k: (stored.get(k), v) for k, v in settings.items() if stored.get(k) != v}
        if changed:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise MonitorError(
                f"state {self.path or 'in memory'} was built with other settings ({what}); rerun with the same "
                "settings, or use a new --output to start a new history."
            )

    # read positions ----------------------------------------------------------------------------------------
    def file_progress(self) -> dict[str, tuple[int, float, int]]:
        """path -> (size, mtime, rows read) of every file read so far."""
        return {r[0]: (r[1], r[2], r[3]) for r in self.con.execute("SELECT * FROM files").fetchall()}

    def total_rows(self) -> int:
        """Rows aggregated so far (the global index of the next row, for row-count windows)."""
        return int(self.con.execute("SELECT coalesce(sum(n), 0) FROM cells").fetchall()[0][0])

    def run_count(self) -> int:
        """Finished runs."""
        return int(self.con.execute("SELECT count(*) FROM runs").fetchall()[0][0])

    # merging -----------------------------------------------------------------------------------------------
    def merge(
        self,
        cells: pd.DataFrame,
        hist: pd.DataFrame,
        files: list[tuple[str, int, float, int]],
        *,
        reference: bool = False,
    ) -> None:
        """Add statistics (to the reference tables when `reference`) and record file positions, atomically."""
        cell_table, hist_table = ("ref_cells", "ref_hist") if reference else ("cells", "hist")
        self.con.execute("BEGIN TRANSACTION")
        try:
            if reference:
                self.con.execute("DELETE FROM ref_cells")
                self.con.execute("DELETE FROM ref_hist")
            self._add(cell_table, cells, "win, grp, y, p", _CELL_SUMS)
            self._add(hist_table, hist, "win, grp, bin", "sum(n) AS n")
            for path, size, mtime, rows_done in files:
                self.con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", [path, size, mtime, rows_done])
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def _add(self, table: str, df: pd.DataFrame, keys: str, sums: str) -> None:
        if df is None or not len(df):
            return
        self.con.register("_incoming", df)
        try:
            cols = keys + ", " + ", ".join(part.split(" AS ")[1] for part in sums.split(", "))
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE _merged AS SELECT {keys}, {sums} FROM "
                f"(SELECT {cols} FROM {table} UNION ALL SELECT {cols} FROM _incoming) GROUP BY ALL"
            )
            self.con.execute(f"DELETE FROM {table}")
            self.con.execute(f"INSERT INTO {table} SELECT {cols} FROM _merged")
            self.con.execute("DROP TABLE _merged")
        finally:
            self.con.unregister("_incoming")

    def add_probe(self, probe: pd.DataFrame) -> None:
        """Add counterfactual probe sums per window."""
        if len(probe):
            self._add(
                "probe",
                probe,
                "win",
                "sum(n_pairs) AS n_pairs, sum(n_flips) AS n_flips, sum(gap_sum) AS gap_sum, sum(gap_sq) AS gap_sq",
            )

    def record_run(self, rows: int, windows: list[int]) -> int:
        """Append this run to the run history; returns its number."""
        run = self.run_count() + 1
        self.con.execute(
            "INSERT INTO runs VALUES (?, CAST(now() AS VARCHAR), ?, ?)", [run, int(rows), json.dumps(windows)]
        )
        return run

    # reading -----------------------------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """A stored table as a DataFrame (small: one row per window x group x cell)."""
        return self.con.execute(f"SELECT * FROM {name}").fetch_df()
