"""Synthetic prediction logs for the monitoring tests: daily files with controlled shifts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np


def day_rows(
    day: int,
    n: int = 2000,
    *,
    seed: int = 0,
    bias: float = 0.0,
    female_share: float = 0.5,
    female_base_rate: float = 0.5,
    label: bool = True,
    group: bool = True,
    text: bool = False,
) -> list[dict]:
    """One day of logs: scores separate the classes; `bias` lowers women's scores (an equalized-odds regression)."""
    rng = np.random.default_rng([seed, day])
    female = rng.random(n) < female_share
    y = (rng.random(n) < np.where(female, female_base_rate, 0.5)).astype(int)
    s = np.clip(rng.normal(0.25 + 0.5 * y, 0.15) - bias * female, 0.0, 1.0)
    start = dt.datetime(2024, 1, day)
    rows = []
    for i in range(n):
        row = {
            "timestamp": (start + dt.timedelta(seconds=int(i * 86000 / n))).isoformat(),
            "score": round(float(s[i]), 4),
        }
        if group:
            row["group"] = "female" if female[i] else "male"
        if label:
            row["label"] = int(y[i])
        if text:
            pron = "she" if female[i] else "he"
            row["text"] = f"{pron} {['works', 'reads books', 'likes music'][i % 3]} at the hospital"
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Rows as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_days(folder: Path, days: range, *, regression_from: int | None = None, **kwargs) -> list[Path]:
    """`day01.jsonl`...: one file per day; from `regression_from` on, women's scores drop by 0.3."""
    paths = []
    for day in days:
        bias = 0.3 if regression_from is not None and day >= regression_from else 0.0
        paths.append(write_jsonl(folder / f"day{day:02d}.jsonl", day_rows(day, bias=bias, **kwargs)))
    return paths


def test_generator_injects_the_regression_only_where_asked():
    """The synthetic logs the monitor tests rely on: same seed, same rows; `bias` lowers women's scores only."""
    clean, shifted = day_rows(5), day_rows(5, bias=0.3)
    assert [r["label"] for r in clean] == [r["label"] for r in shifted]
    drop = {
        g: np.mean([a["score"] - b["score"] for a, b in zip(clean, shifted) if a["group"] == g])
        for g in ("female", "male")
    }
    assert drop["male"] == 0.0 and 0.2 < drop["female"] <= 0.3
    assert day_rows(5) == clean and day_rows(6) != clean
