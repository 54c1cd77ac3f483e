"""What every suite shares: run settings, option parsing, and the result a suite hands to the report."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class EvalSettings:
    """Settings shared by all suites in one `fairtune evaluate` run.

    Args:
        n_bootstrap: bootstrap resamples for confidence intervals (0 turns intervals off).
        confidence: confidence level of the intervals.
        seed: seed for bootstrap resampling and any sampling of examples.
        batch_size: examples (or masked variants) per forward pass.
        progress: show tqdm progress bars on long loops.
    """

    n_bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    batch_size: int = 32
    progress: bool = True


@dataclass
class SuiteResult:
    """The outcome of one suite.

    `metrics` are headline numbers (top-level keys of results.json); `intervals` maps a metric name, or
    `"<row>/<column>"` of the breakdown, to its (low, high) confidence interval; `breakdown` is a table of
    rows (groups, bias types, categories) by columns; `plot_columns` are breakdown columns drawn as bars.
    """

    suite: str
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    breakdown_label: str = "group"
    plot_columns: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (intervals as two-element lists)."""
        d = dataclasses.asdict(self)
        d["intervals"] = {k: [float(v[0]), float(v[1])] for k, v in self.intervals.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SuiteResult:
        """Inverse of `to_dict` (used to read a baseline's results.json)."""
        d = dict(d)
        d["intervals"] = {k: (float(v[0]), float(v[1])) for k, v in d.get("intervals", {}).items()}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def options_from_dict(cls: type[T], values: dict[str, Any] | None, suite: str) -> T:
    """Build a suite's options dataclass, raising on unknown keys with the list of valid ones."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for suite {suite!r}; valid options: {sorted(names)}")
    return cls(**values)
