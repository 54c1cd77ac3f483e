"""`FairnessMonitor`: feed it prediction logs (files, a table, or batches in a service) and ask for a report.

from fairtune.monitor import FairnessMonitor, MonitorConfig
monitor = FairnessMonitor(MonitorConfig(window="1d", alerts=("equalized_odds_difference<=0.1",)),
                          model_dir="outputs/model", state_path="monitoring/monitor_state.duckdb")
monitor.ingest_logs("logs/*.parquet")     # only rows not seen by an earlier run
monitor.update(batch)                     # or: a DataFrame / list of dicts / pyarrow Table from a service
report = monitor.report()                 # windows, intervals, drift, probe, alerts
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from fairtune.monitor import source as src
from fairtune.monitor.aggregate import Aggregates, run_aggregate, window_expr
from fairtune.monitor.alerts import parse_alerts
from fairtune.monitor.config import MonitorConfig, MonitorError
from fairtune.monitor.probe import ProbeModel, probe_window, sample_texts
from fairtune.monitor.promises import read_promises
from fairtune.monitor.state import MonitorState

REFERENCE_ROWS_LIMIT = 200_000
SQLITE_CHUNK = 100_000


def _group_udf(axis: str):
    from fairtune.augment import group_from_lexicon

    def fn(text: str | None) -> str | None:
        return None if text is None else group_from_lexicon(text, axis)

    return fn


class FairnessMonitor:
    """Fairness of a deployed classifier over windows of its prediction logs (see module doc and docs/monitoring.md).

    Args:
        config: columns, window, thresholds, alerts (a `MonitorConfig`).
        model_dir: the model's dir: its card's model-index gives the promises, its weights the probe.
        state_path: the DuckDB state file (None: in memory, forgotten on close).
        reference: a file in the log format (e.g. the test split with the model's scores, or texts to score)
            to compare windows against; the first window is the reference otherwise.
        model: a ready `ProbeModel` instead of loading one from `model_dir`.
        memory_limit, threads: DuckDB settings (e.g. "2GB", 2).
    """

    def __init__(
        self,
        config: MonitorConfig | None = None,
        *,
        model_dir: str | Path | None = None,
        state_path: str | Path | None = None,
        reference: str | Path | None = None,
        model: ProbeModel | None = None,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        """Open the state, check the settings against it, read the card's promises and load the probe model."""
        self.config = config or MonitorConfig()
        self.constraints = parse_alerts(self.config.alerts)
        self.state = MonitorState(state_path, memory_limit=memory_limit, threads=threads)
        self.state.check_settings(self._settings())
        self.state.con.create_function(src.GROUP_UDF, _group_udf(self.config.group_axis), ["VARCHAR"], "VARCHAR")
        self.model_dir = Path(model_dir) if model_dir else None
        self.notes: list[str] = []
        self.promises: dict[str, float] = {}
        if self.model_dir is not None:
            self.promises, notes = read_promises(self.model_dir)
            self.notes += notes
        self._model = model
        self._model_loaded = model is not None
        self.rows_this_run = 0
        self.windows_this_run: set[int] = set()
        self.groups_source: set[str] = set(self.state.get_meta("groups_source") or [])
        if reference is not None:
            self._load_reference(str(reference))

    def _settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "window": c.window.spec,
            "columns": asdict(c.columns),
            "threshold": c.threshold,
            "positive_label": c.positive_label,
            "group_axis": c.group_axis,
            "score_bins": c.score_bins,
        }

    @property
    def model(self) -> ProbeModel | None:
        """The probe model (loaded on first use), or None without a model dir or with the probe off."""
        if not self._model_loaded:
            self._model_loaded = True
            if self.model_dir is not None and self.config.probe_size > 0:
                self._model = ProbeModel.load(self.model_dir)
        return self._model

    def close(self) -> None:
        """Close the state database."""
        self.state.close()

    def __enter__(self) -> FairnessMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # reading logs ------------------------------------------------------------------------------------------
    def ingest_logs(self, spec: str, table: str | None = None) -> int:
        """Read the rows of `spec` (a file, a glob, or a .duckdb/.sqlite database with `table`) not read before."""
        kind = src.database_kind(spec)
        if kind is not None:
            if not table:
                raise MonitorError(f"--logs {spec} is a {kind} database; name the table with --table NAME.")
            if not os.path.isfile(spec):
                raise MonitorError(f"--logs {spec}: no such database file; check the path.")
            return self._ingest_duckdb(spec, table) if kind == "duckdb" else self._ingest_sqlite(spec, table)
        if table:
            raise MonitorError(f"--table {table}: --logs {spec} is not a database (.duckdb, .sqlite, .db).")
        return self._ingest_files(src.find_log_files(spec))

    def update(self, batch: Any) -> int:
        """Add a batch of logged predictions (DataFrame, list of dicts, dict of columns or pyarrow Table)."""
        if isinstance(batch, list):
            batch = pd.DataFrame.from_records(batch)
        elif isinstance(batch, Mapping):
            batch = pd.DataFrame(dict(batch))
        if len(batch) == 0:
            return 0
        name = f"batch:{self.state.run_count() + 1}:{self.state.total_rows()}"
        return self._ingest_relation(batch, name)

    def _canonical(self, schema: dict[str, str], where: str) -> src.Canonical:
        canonical = src.canonical_select(schema, self.config, where)
        self.groups_source.add(canonical.groups)
        self._prediction_column = canonical.prediction_column
        return canonical

    def _ingest_files(self, files: list[src.LogFile]) -> int:
        progress = self.state.file_progress()
        todo = []
        for f in files:
            size, mtime, done = progress.get(f.path, (None, None, 0))
            if size == f.size and mtime == f.mtime:
                continue  # unchanged since the last run
            if size is not None and f.size < size:
                self.notes.append(f"{f.path} shrank since the last run (rewritten?); only rows past {done} are read.")
            schema = src.describe(self.state.con, f"{f.reader}({src.quote_str(f.path)})", f.path)
            todo.append((f, self._canonical(schema, f.path), done))
        if not todo:
            return 0
        base = self.state.total_rows()
        scans, meta = [], []
        for f, canonical, done in todo:
            scan = src.file_scan_sql(f, canonical, done)
            if not self.config.window.is_time:
                n = self.state.con.execute(f"SELECT count(*) FROM {f.reader}({src.quote_str(f.path)})").fetchall()[0][
                    0
                ]
                scans.append(self._windowed(scan, f"{base} + _pos - {done}"))
                base += max(int(n) - done, 0)
            else:
                scans.append(self._windowed(scan, "0"))
            meta.append((f.path, f.size, f.mtime, done))
        return self._ingest_sql(" UNION ALL ".join(f"({s})" for s in scans), meta)

    def _windowed(self, scan: str, row_index_sql: str) -> str:
        return f"SELECT *, {window_expr(self.config, row_index_sql)} AS _win FROM ({scan}) AS s"

    def _ingest_relation(self, frame: Any, name: str, pos_column: str | None = None, skip: int = 0) -> int:
        con = self.state.con
        con.register("_batch", frame)
        try:
            schema = src.describe(con, "_batch", name)
            canonical = self._canonical(schema, name)
            scan = src.relation_scan_sql("_batch", name, canonical, skip, pos_column)
            base = self.state.total_rows()
            return self._ingest_sql(self._windowed(scan, f"{base} + _pos - {skip}"), [])
        finally:
            con.unregister("_batch")

    def _ingest_duckdb(self, path: str, table: str) -> int:
        con = self.state.con
        key = f"{Path(path).resolve()}::{table}"
        done = self.state.file_progress().get(key, (0, 0.0, 0))[2]
        con.execute(f"ATTACH {src.quote_str(path)} AS _logs (READ_ONLY)")
        try:
            relation = f"_logs.{src.quote_ident(table)}"
            schema = src.describe(con, relation, f"{path} table {table}")
            canonical = self._canonical(schema, f"{path} table {table}")
            scan = src.relation_scan_sql(relation, key, canonical, done, "rowid")
            base = self.state.total_rows()
            st = os.stat(path)
            return self._ingest_sql(self._windowed(scan, f"{base} + _pos - {done}"), [(key, st.st_size, -1.0, done)])
        finally:
            con.execute("DETACH _logs")

    def _ingest_sqlite(self, path: str, table: str) -> int:
        """SQLite without DuckDB's sqlite extension: new rows (by rowid) streamed in chunks, memory bounded."""
        import sqlite3

        key = f"{Path(path).resolve()}::{table}"
        done = self.state.file_progress().get(key, (0, 0.0, 0))[2]
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            try:
                cur = db.execute(
                    f"SELECT rowid AS _rowid, * FROM {src.quote_ident(table)} WHERE rowid >= ? ORDER BY rowid", [done]
                )
            except sqlite3.Error as err:
                raise MonitorError(f"{path}: cannot read table {table!r} ({err}); check --table.") from None
            names = [d[0] for d in cur.description]
            total = 0
            while rows := cur.fetchmany(SQLITE_CHUNK):
                frame = pd.DataFrame.from_records(rows, columns=names)
                self.state.con.register("_batch", frame)
                try:
                    schema = src.describe(self.state.con, "_batch", f"{path} table {table}")
                    schema.pop("_rowid", None)
                    canonical = self._canonical(schema, f"{path} table {table}")
                    scan = src.relation_scan_sql("_batch", key, canonical, done, "_rowid")
                    sql = self._windowed(scan, f"{self.state.total_rows()} + _pos - {done}")
                    total += self._ingest_sql(sql, [(key, 0, -1.0, done)])
                finally:
                    self.state.con.unregister("_batch")
                done = int(frame["_rowid"].iloc[-1]) + 1
            return total
        finally:
            db.close()

    def _ingest_sql(self, rows_sql: str, files: list[tuple[str, int, float, int]]) -> int:
        """Aggregate, probe and merge the rows of `rows_sql` (canonical columns plus `_win`)."""
        con = self.state.con
        con.execute(f"CREATE OR REPLACE TEMP VIEW _new_rows AS {rows_sql}")
        names = {"prediction": getattr(self, "_prediction_column", self.config.columns.prediction)}
        aggs = run_aggregate(con, "SELECT * FROM _new_rows", self.config, names)
        probe = self._probe(aggs)
        done = {row.file: int(row.max_pos) + 1 for row in aggs.files.itertuples(index=False)}
        updates = [(path, size, mtime, max(done.get(path, start), start)) for path, size, mtime, start in files]
        self.state.merge(aggs.cells, aggs.hist, updates)
        if probe is not None:
            self.state.add_probe(probe)
        self.state.set_meta("groups_source", sorted(self.groups_source))
        con.execute("DROP VIEW IF EXISTS _new_rows")
        self.rows_this_run += aggs.rows
        self.windows_this_run |= {int(w) for w in aggs.cells["win"].dropna().unique()}
        return aggs.rows

    def _probe(self, aggs: Aggregates) -> pd.DataFrame | None:
        model = self.model
        if model is None or not len(aggs.cells):
            return None
        have = self.state.table("probe").set_index("win")["n_pairs"].to_dict()
        wanted = {
            int(w): self.config.probe_size - int(have.get(w, 0))
            for w in aggs.cells["win"].dropna().unique()
            if self.config.probe_size - int(have.get(w, 0)) > 0
        }
        texts = sample_texts(self.state.con, "SELECT * FROM _new_rows", wanted, self.config.seed)
        rows = []
        for win, sample in texts.items():
            sums = probe_window(model, sample, self.config.probe_axes, self.config.seed, wanted[win])
            if sums["n_pairs"]:
                rows.append({"win": win, **sums})
        return pd.DataFrame(rows) if rows else None

    # the reference ---------------------------------------------------------------------------------------------
    def _load_reference(self, path: str) -> None:
        files = src.find_log_files(path)
        stamp = [[f.path, f.size, f.mtime] for f in files]
        if self.state.get_meta("reference") == stamp:
            return
        con = self.state.con
        frames = []
        for f in files:
            relation = f"{f.reader}({src.quote_str(f.path)})"
            schema = src.describe(con, relation, f.path)
            cols = self.config.columns
            if cols.prediction not in schema and cols.score not in schema:
                if cols.text not in schema:
                    raise MonitorError(
                        f"--reference {f.path}: no {cols.prediction!r}, {cols.score!r} or {cols.text!r} column; "
                        "log the model's scores on it, or give its texts and --model-dir to score them."
                    )
                frames.append(self._score_reference(relation, f.path))
            else:
                frames.append(con.execute(f"SELECT * FROM {relation}").fetch_df())
        frame = pd.concat(frames, ignore_index=True)
        config = MonitorConfig(**{**self.config.__dict__, "window": "1"})  # the reference needs no timestamps
        con.register("_ref", frame)
        try:
            schema = src.describe(con, "_ref", path)
            canonical = src.canonical_select(schema, config, f"--reference {path}")
            scan = src.relation_scan_sql("_ref", "reference", canonical, 0, None)
            aggs = run_aggregate(
                con,
                f"SELECT *, CAST(0 AS BIGINT) AS _win FROM ({scan}) AS s",
                config,
                {"prediction": self.config.columns.prediction},
            )
        finally:
            con.unregister("_ref")
        self.state.merge(aggs.cells, aggs.hist, [], reference=True)
        self.state.set_meta("reference", stamp)
        self.state.set_meta("reference_path", path)

    def _score_reference(self, relation: str, path: str) -> pd.DataFrame:
        if self.model_dir is None:
            raise MonitorError(f"--reference {path} has texts but no scores; pass --model-dir to score them.")
        n = self.state.con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
        if n > REFERENCE_ROWS_LIMIT:
            raise MonitorError(
                f"--reference {path} has {n} rows to score (limit {REFERENCE_ROWS_LIMIT}); log the model's scores on "
                "it, or pass a sample."
            )
        frame = self.state.con.execute(f"SELECT * FROM {relation}").fetch_df()
        model = self.model or ProbeModel.load(self.model_dir)
        probs = model.probs(frame[self.config.columns.text].astype(str).tolist())
        frame[self.config.columns.score] = probs[:, 1]
        return frame

    # the report ----------------------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Every window seen so far, with metrics, intervals, drift, probe and alerts (a JSON-ready dict)."""
        from fairtune.monitor.report import build_report

        return build_report(self)
