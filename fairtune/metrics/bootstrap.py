"""Percentile bootstrap confidence intervals for any metric computed from row-aligned arrays."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten a nested dict of numbers to `{"a/b/c": value}`, keeping only finite-or-nan floats."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=f"{name}/"))
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def bootstrap_intervals(
    metric_fn: Callable[..., Mapping[str, Any]],
    arrays: Sequence[Any],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    strata: Any = None,
    keys: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, tuple[float, float]]:
    """95% (by default) percentile intervals of every number `metric_fn(*arrays)` returns, resampling rows.

    `arrays` are row-aligned (numpy arrays or lists); each resample draws row indices with replacement (within
    each stratum when `strata` is given) and calls `metric_fn` on the resampled arrays. Nested dicts are flattened
    to `"a/b"` keys; a key missing or NaN in a resample (a group that was not drawn) is skipped for that resample.
    """
    if n_resamples <= 0:
        return {}
    columns = [np.asarray(a, dtype=object) if _is_ragged(a) else np.asarray(a) for a in arrays]
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError("bootstrap_intervals: all arrays must have the same number of rows")
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    strata_index = _strata_index(strata, n)
    samples: dict[str, list[float]] = {}
    iterator: Any = range(n_resamples)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="bootstrap", leave=False)
    for _ in iterator:
        idx = np.concatenate([rows[rng.integers(0, len(rows), len(rows))] for rows in strata_index])
        try:
            values = flatten_metrics(metric_fn(*[c[idx] for c in columns]))
        except (ValueError, ZeroDivisionError):  # a degenerate resample (e.g. one class only)
            continue
        for key, value in values.items():
            if keys is not None and key not in keys:
                continue
            if not math.isnan(value):
                samples.setdefault(key, []).append(value)
    alpha = (1.0 - confidence) / 2.0
    return {
        key: (float(np.quantile(vals, alpha)), float(np.quantile(vals, 1.0 - alpha)))
        for key, vals in samples.items()
        if len(vals) >= max(2, n_resamples // 2)
    }


def _is_ragged(a: Any) -> bool:
    """Whether `a` holds python objects (strings, None) that numpy should keep as objects."""
    return isinstance(a, list) and any(x is None for x in a)


def _strata_index(strata: Any, n: int) -> list[np.ndarray]:
    """Row indices per stratum (a single stratum when `strata` is None)."""
    if strata is None:
        return [np.arange(n)]
    values = np.asarray(strata, dtype=object)
    return [np.flatnonzero(values == s) for s in dict.fromkeys(values.tolist())]
