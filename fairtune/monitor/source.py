"""Where prediction logs come from (files, globs, a DuckDB or SQLite table) and the SQL that reads their new rows.

Every source becomes DuckDB SQL with the same canonical columns, so one aggregation query serves all of them:
`_file`, `_pos` (row position in its file or table), `_ts` (TIMESTAMP, UTC), `_p` (predicted class 0/1),
`_s` (positive-class score), `_g` (group), `_y` (label 0/1 or NULL), `_text`, `_s_logged` (a score was logged), and
`_p_raw`/`_y_raw`/`_s_raw` (the logged values as text, only computed for error messages). Rows are addressed by (file, position), so a later run reads
only what was appended.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairtune.monitor.config import LogColumns, MonitorConfig, MonitorError

FILE_READERS = {
    ".jsonl": "read_json_auto",
    ".ndjson": "read_json_auto",
    ".json": "read_json_auto",
    ".csv": "read_csv_auto",
    ".tsv": "read_csv_auto",
    ".parquet": "read_parquet",
}
DB_SUFFIXES = {".duckdb": "duckdb", ".ddb": "duckdb", ".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite"}
_TIME_TYPES = ("TIMESTAMP", "DATE")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_FLOAT = ("FLOAT", "DOUBLE", "REAL", "DECIMAL")
GROUP_UDF = "fairtune_group_from_text"


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_str(value: str) -> str:
    """A DuckDB string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _suffix(path: str) -> str:
    p = path.lower()
    for comp in (".gz", ".zst"):
        if p.endswith(comp):
            p = p[: -len(comp)]
    return os.path.splitext(p)[1]


@dataclass(frozen=True)
class LogFile:
    """One log file with what decides whether it changed since the last run."""

    path: str
    reader: str
    size: int
    mtime: float


def find_log_files(spec: str) -> list[LogFile]:
    """The files a path or glob names, sorted by name; raises MonitorError when none match or a format is unknown."""
    paths = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths:
        raise MonitorError(f"--logs {spec}: no file matches; check the path, and quote a glob ('logs/*.jsonl').")
    out = []
    for p in paths:
        reader = FILE_READERS.get(_suffix(p))
        if reader is None:
            raise MonitorError(
                f"--logs {p}: unknown log format {_suffix(p)!r}; use .jsonl, .json, .csv, .tsv or .parquet files, "
                "or a .duckdb/.sqlite database with --table."
            )
        st = os.stat(p)
        out.append(LogFile(str(Path(p).resolve()), reader, st.st_size, st.st_mtime))
    return out


def database_kind(spec: str) -> str | None:
    """`duckdb` or `sqlite` when `spec` names a database file, else None."""
    return DB_SUFFIXES.get(_suffix(spec))


def describe(con: Any, relation_sql: str, where: str) -> dict[str, str]:
    """Column name -> DuckDB type of a relation; a file DuckDB cannot read becomes a MonitorError naming it."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()
    except Exception as err:  # duckdb raises several error classes for unreadable input
        first = str(err).strip().splitlines()[0]
        raise MonitorError(
            f"{where}: DuckDB cannot read it ({first}); check the file format and its contents."
        ) from None
    return {r[0]: str(r[1]).upper() for r in rows}


@dataclass(frozen=True)
class Canonical:
    """The canonical select list of one source and what it had to derive."""

    select: str
    groups: str  # "logged" | "text" | "none"
    prediction_column: str  # the logged column the predicted class comes from (the score when thresholded)
    has_label: bool
    has_score: bool
    has_text: bool


def _binary_expr(col: str, dtype: str, positive: str | None) -> str:
    q = quote_ident(col)
    if dtype == "BOOLEAN":
        return f"CAST({q} AS INTEGER)"
    if positive is not None:
        return f"CASE WHEN {q} IS NULL THEN NULL WHEN CAST({q} AS VARCHAR) = {quote_str(positive)} THEN 1 ELSE 0 END"
    if dtype.startswith(_NUMERIC):
        return f"CAST({q} AS INTEGER)"
    if dtype.startswith(_FLOAT):
        return f"CASE WHEN {q} IN (0, 1) THEN CAST({q} AS INTEGER) ELSE -1 END"
    low = f"lower(trim(CAST({q} AS VARCHAR)))"
    return (
        f"CASE WHEN {q} IS NULL OR {low} = '' THEN NULL WHEN {low} = 'true' THEN 1 WHEN {low} = 'false' THEN 0 "
        f"ELSE coalesce(TRY_CAST({low} AS INTEGER), -1) END"
    )


def _timestamp_expr(col: str, dtype: str) -> str:
    q = quote_ident(col)
    if dtype.startswith("TIMESTAMP WITH TIME ZONE") or dtype == "TIMESTAMPTZ":
        return f"CAST(timezone('UTC', {q}) AS TIMESTAMP)"
    if dtype.startswith(_TIME_TYPES):
        return f"CAST({q} AS TIMESTAMP)"
    if dtype.startswith(_NUMERIC + _FLOAT):
        return f"CAST(timezone('UTC', to_timestamp(CAST({q} AS DOUBLE))) AS TIMESTAMP)"
    v = f"CAST({q} AS VARCHAR)"
    return f"coalesce(TRY_CAST({v} AS TIMESTAMP), CAST(timezone('UTC', TRY_CAST({v} AS TIMESTAMPTZ)) AS TIMESTAMP))"


def canonical_select(schema: dict[str, str], config: MonitorConfig, where: str) -> Canonical:
    """The select list mapping a source's columns onto the canonical ones; missing required columns raise."""
    cols: LogColumns = config.columns
    has = set(schema)
    has_pred, has_score = cols.prediction in has, cols.score in has
    if not (has_pred or has_score):
        raise MonitorError(
            f"{where}: no {cols.prediction!r} or {cols.score!r} column (columns: {', '.join(sorted(has))}); "
            "pass --prediction-column or --score-column with the name your logs use."
        )
    if config.window.is_time and cols.timestamp not in has:
        raise MonitorError(
            f"{where}: no {cols.timestamp!r} column for the time window --window {config.window.spec}; pass "
            "--timestamp-column NAME, or use a row-count window such as --window 10000."
        )
    has_text = cols.text in has
    parts = []
    ts = _timestamp_expr(cols.timestamp, schema[cols.timestamp]) if cols.timestamp in has else "NULL"
    parts.append(f"{ts} AS _ts")
    if has_score:
        parts.append(f"TRY_CAST({quote_ident(cols.score)} AS DOUBLE) AS _s")
        parts.append(f"CAST({quote_ident(cols.score)} AS VARCHAR) AS _s_raw")
        parts.append(f"{quote_ident(cols.score)} IS NOT NULL AS _s_logged")
    else:
        parts += ["CAST(NULL AS DOUBLE) AS _s", "CAST(NULL AS VARCHAR) AS _s_raw", "FALSE AS _s_logged"]
    if has_pred:
        parts.append(f"{_binary_expr(cols.prediction, schema[cols.prediction], config.positive_label)} AS _p")
        parts.append(f"CAST({quote_ident(cols.prediction)} AS VARCHAR) AS _p_raw")
    else:
        s = f"TRY_CAST({quote_ident(cols.score)} AS DOUBLE)"
        parts.append(f"CASE WHEN {s} IS NULL THEN NULL WHEN {s} >= {config.threshold!r} THEN 1 ELSE 0 END AS _p")
        parts.append(f"CAST({quote_ident(cols.score)} AS VARCHAR) AS _p_raw")
    if cols.label in has:
        parts.append(f"{_binary_expr(cols.label, schema[cols.label], config.positive_label)} AS _y")
        parts.append(f"CAST({quote_ident(cols.label)} AS VARCHAR) AS _y_raw")
    else:
        parts += ["CAST(NULL AS INTEGER) AS _y", "CAST(NULL AS VARCHAR) AS _y_raw"]
    if cols.group in has:
        groups = "logged"
        parts.append(f"NULLIF(trim(CAST({quote_ident(cols.group)} AS VARCHAR)), '') AS _g")
    elif has_text:
        groups = "text"
        parts.append(f"{GROUP_UDF}(CAST({quote_ident(cols.text)} AS VARCHAR)) AS _g")
    else:
        groups = "none"
        parts.append("CAST(NULL AS VARCHAR) AS _g")
    parts.append(
        f"CAST({quote_ident(cols.text)} AS VARCHAR) AS _text" if has_text else "CAST(NULL AS VARCHAR) AS _text"
    )
    pred_col = cols.prediction if has_pred else cols.score
    return Canonical(", ".join(parts), groups, pred_col, cols.label in has, has_score, has_text)


def file_scan_sql(file: LogFile, canonical: Canonical, skip_rows: int) -> str:
    """Canonical rows of one file from position `skip_rows` on (row positions follow the file's order)."""
    if file.reader == "read_parquet":  # positions from the file itself: the scan stays parallel
        inner = f"SELECT *, file_row_number AS _pos FROM read_parquet({quote_str(file.path)}, file_row_number=true)"
    else:  # a streaming row_number() keeps the file's order
        inner = f"SELECT *, row_number() OVER () - 1 AS _pos FROM {file.reader}({quote_str(file.path)})"
    return (
        f"SELECT {quote_str(file.path)} AS _file, _pos, {canonical.select} FROM ({inner}) AS t "
        f"WHERE _pos >= {int(skip_rows)}"
    )


def relation_scan_sql(relation: str, name: str, canonical: Canonical, skip_rows: int, pos_column: str | None) -> str:
    """Canonical rows of a table or registered batch; `pos_column` (e.g. rowid) addresses rows, else row order."""
    pos = quote_ident(pos_column) if pos_column else "row_number() OVER () - 1"
    inner = f"SELECT *, {pos} AS _pos FROM {relation}"
    return f"SELECT {quote_str(name)} AS _file, _pos, {canonical.select} FROM ({inner}) AS t WHERE _pos >= {skip_rows}"
