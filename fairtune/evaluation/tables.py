"""Reading tabular inputs: local csv/tsv/json/jsonl/parquet files or Hub data sets, as pandas DataFrames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_table(path_or_id: str, split: str = "test") -> Any:
    """A DataFrame from a local file (by extension) or a parquet-backed Hub data set (`split`)."""
    import pandas as pd

    p = Path(path_or_id)
    if p.exists():
        suffix = p.suffix.lower()
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(p, sep="\t")
        if suffix == ".jsonl":
            return pd.read_json(p, lines=True)
        if suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict) and "data" in data and isinstance(data["data"], list):
                data = data["data"]
            return pd.DataFrame(data)
        if suffix == ".parquet":
            return pd.read_parquet(p)
        raise ValueError(f"unsupported file type {suffix!r} for {p} (use csv, tsv, json, jsonl or parquet)")
    from datasets import load_dataset

    return load_dataset(path_or_id, split=split).to_pandas()


def require_columns(df: Any, columns: list[str], source: str, flag_hint: str = "") -> None:
    """Raise naming the missing columns and the ones that exist."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{source} has no column(s) {missing}; it has {list(df.columns)}. {flag_hint}".strip())


def encode_labels(values: Any, label2id: dict[str, int] | None) -> Any:
    """Integer labels from ints, numeric strings, booleans, or names found in the model's `label2id`."""
    import numpy as np

    arr = list(values)
    if all(isinstance(v, (bool, np.bool_)) for v in arr):
        return np.asarray(arr, dtype=int)
    try:
        return np.asarray([int(v) for v in arr], dtype=int)
    except (TypeError, ValueError):
        pass
    lookup = {str(k).lower(): int(v) for k, v in (label2id or {}).items()}
    unknown = sorted({str(v) for v in arr if str(v).lower() not in lookup})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are neither integers nor names in the model's label2id {label2id}")
    return np.asarray([lookup[str(v).lower()] for v in arr], dtype=int)
