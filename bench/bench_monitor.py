"""Monitoring throughput: `FairnessMonitor` (DuckDB, one SQL pass) against a pandas group-by, on the same logs.

Input: N synthetic prediction-log rows (default 10 million) in daily Parquet files (timestamp, score, group, label;
three groups, a fairness regression from day 20), generated once into --data-dir. Each method runs in its own
process, so its peak resident memory (ru_maxrss) is its own:

- fairtune: `FairnessMonitor.ingest_logs(glob)` (new-row bookkeeping, window/group/label/prediction cells, score
  histograms and per-file checks in one GROUPING SETS query) + `report()` (metrics, 1000-resample intervals,
  drift, alerts per window);
- pandas: `pd.read_parquet` of the same columns, then `groupby([window, group, label, prediction])` with the
  same sums (count, score sum, residual sums), then the same per-window metrics from those cells.

Both produce the same cells (checked). rows/s counts log rows over the wall time of each method, imports excluded;
CPU s is the process CPU time of the same step (all threads): on a shared machine it is the steadier number.
Run: `nice python bench/bench_monitor.py [--rows 10000000] [--days 30] [--threads 2]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path


def generate(folder: Path, rows: int, days: int, seed: int = 0) -> list[Path]:
    """Daily Parquet files with `rows` rows in total (kept when already there)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "SPEC.json"
    spec = {"rows": rows, "days": days, "seed": seed}
    paths = [folder / f"day{d:02d}.parquet" for d in range(1, days + 1)]
    if stamp.is_file() and json.loads(stamp.read_text()) == spec and all(p.is_file() for p in paths):
        return paths
    per_day = rows // days
    for d, path in enumerate(paths, 1):
        n = per_day + (rows - per_day * days if d == days else 0)
        rng = np.random.default_rng([seed, d])
        group = rng.choice(np.array(["female", "male", "nonbinary"]), n, p=[0.45, 0.45, 0.10])
        label = (rng.random(n) < 0.4).astype(np.int8)
        bias = 0.2 if d >= 20 else 0.0
        score = np.clip(rng.normal(0.3 + 0.4 * label, 0.15) - bias * (group == "female"), 0, 1)
        start = np.datetime64(f"2024-01-{d:02d}T00:00:00", "s").astype("int64")
        ts = (start + np.sort(rng.integers(0, 86400, n))).astype("datetime64[s]")
        table = pa.table({"timestamp": ts, "score": score.astype(np.float32), "group": group, "label": label})
        pq.write_table(table, path, row_group_size=256_000)
    stamp.write_text(json.dumps(spec))
    return paths


def _fairtune(folder: str, threads: int, queue: mp.Queue) -> None:
    from fairtune.monitor import FairnessMonitor, MonitorConfig

    config = MonitorConfig(window="1d", alerts=("equalized_odds_difference<=0.1",), probe_size=0)
    state = Path(folder).parent / "bench_monitor_state.duckdb"
    state.unlink(missing_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    with FairnessMonitor(config, state_path=state, threads=threads, memory_limit="2GB") as monitor:
        rows = monitor.ingest_logs(str(Path(folder) / "*.parquet"))
        t1, c1 = time.perf_counter(), time.process_time()
        report = monitor.report()
        t2 = time.perf_counter()
        cells = monitor.state.table("cells")
    state.unlink(missing_ok=True)
    queue.put(_result("fairtune (DuckDB)", rows, t1 - t0, c1 - c0, t2 - t1, report, cells))


def _pandas(folder: str, threads: int, queue: mp.Queue) -> None:
    import numpy as np
    import pandas as pd

    from fairtune.monitor.window_metrics import window_metrics

    files = sorted(Path(folder).glob("*.parquet"))
    t0, c0 = time.perf_counter(), time.process_time()
    df = pd.concat(
        [pd.read_parquet(f, columns=["timestamp", "score", "group", "label"]) for f in files], ignore_index=True
    )
    df["win"] = (df["timestamp"].astype("datetime64[s]").astype("int64") // 86400) * 86400
    df["p"] = (df["score"] >= 0.5).astype(np.int8)
    df["s"] = df["score"].astype(np.float64)
    df["r"] = df["label"] - df["s"]
    df["r2"] = df["r"] ** 2
    cells = (
        df.groupby(["win", "group", "label", "p"], observed=True)
        .agg(
            n=("s", "size"),
            s_n=("s", "count"),
            s_sum=("s", "sum"),
            r_n=("r", "count"),
            r_sum=("r", "sum"),
            r_sq=("r2", "sum"),
        )
        .reset_index()
        .rename(columns={"group": "grp", "label": "y"})
    )
    rows = len(df)
    del df
    t1, c1 = time.perf_counter(), time.process_time()
    windows = [window_metrics(c, min_group_rows=100) for _, c in cells.groupby("win")]
    t2 = time.perf_counter()
    queue.put(_result("pandas group-by", rows, t1 - t0, c1 - c0, t2 - t1, {"windows": windows}, cells))


def _result(name, rows, read_s, read_cpu_s, report_s, report, cells) -> dict:
    key = sorted((int(r.win), str(r.grp), int(r.y), int(r.p), int(r.n)) for r in cells.itertuples())
    return {
        "method": name,
        "rows": int(rows),
        "read_s": read_s,
        "read_cpu_s": read_cpu_s,
        "report_s": report_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "windows": len(report["windows"]),
        "cells": key,
    }


def _baseline_rss(queue: mp.Queue) -> None:
    import pandas  # noqa: F401

    import fairtune.monitor.monitor  # noqa: F401

    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _in_process(target, *args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    """Generate the logs once, run both methods in fresh processes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--data-dir", default="/tmp/fairtune_bench_monitor/logs")
    args = parser.parse_args()
    t = time.perf_counter()
    files = generate(Path(args.data_dir), args.rows, args.days)
    size = sum(f.stat().st_size for f in files) / 2**20
    print(
        f"logs: {args.rows:,} rows in {len(files)} Parquet files ({size:.0f} MiB), ready in {time.perf_counter() - t:.1f}s"
    )
    base = _in_process(_baseline_rss)
    results = [_in_process(_fairtune, args.data_dir, args.threads), _in_process(_pandas, args.data_dir, args.threads)]
    assert results[0]["cells"] == results[1]["cells"], "the two methods disagree on the window cells"
    print(
        f"process baseline after imports: {base:.0f} MiB; both methods produced identical cells "
        f"({len(results[0]['cells'])} cells, {results[0]['windows']} windows)"
    )
    head = (
        f"{'method':<20} {'rows':>12} {'read+aggregate s':>17} {'CPU s':>7} {'rows/s':>12} {'rows/CPU s':>12} "
        f"{'report s':>9} {'peak RSS MiB':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['method']:<20} {r['rows']:>12,} {r['read_s']:>17.2f} {r['read_cpu_s']:>7.2f} "
            f"{r['rows'] / r['read_s']:>12,.0f} {r['rows'] / r['read_cpu_s']:>12,.0f} {r['report_s']:>9.2f} "
            f"{r['peak_rss_mb']:>13.0f}"
        )


if __name__ == "__main__":
    main()
