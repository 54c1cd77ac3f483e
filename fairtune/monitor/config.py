"""What a monitoring run is told: log column names, the window, thresholds for small data, drift and alerts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class MonitorError(ValueError):
    """Bad monitoring input (a file, a column, a flag); the message names it and the fix, in one line."""


@dataclass(frozen=True)
class Window:
    """A time window (`1d`, `6h`, `30m`, `1w`) or a row-count window (`10000`)."""

    spec: str
    seconds: int | None = None
    rows: int | None = None

    @property
    def is_time(self) -> bool:
        """Whether windows are time buckets (else consecutive blocks of `rows` rows)."""
        return self.seconds is not None

    def sql_interval(self) -> str:
        """The DuckDB interval literal of a time window."""
        return f"INTERVAL '{self.seconds} seconds'"


def parse_window(text: str | int) -> Window:
    """`1d`/`6h`/`30m`/`1w` -> a time window; a plain integer -> a row-count window."""
    raw = str(text).strip()
    if raw.isdigit():
        if int(raw) <= 0:
            raise MonitorError(f"--window {raw}: a row-count window must be positive; write e.g. --window 10000.")
        return Window(raw, rows=int(raw))
    m = _DURATION.match(raw)
    if m is None or int(m.group(1)) <= 0:
        raise MonitorError(
            f"--window {raw!r}: write a duration such as 1d, 6h, 30m, 1w, or a row count such as 10000."
        )
    seconds = int(timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))}).total_seconds())
    return Window(raw, seconds=seconds)


@dataclass(frozen=True)
class LogColumns:
    """Names of the log columns; only one of `prediction` and `score` is needed, the others are optional.

    Args:
        timestamp: event time (needed for time windows).
        prediction: predicted class, 0/1 (or the `positive_label` string).
        score: probability of the positive class; thresholded at `threshold` when there is no prediction column.
        group: protected group; when absent and `text` is logged, groups are derived with `group_from_lexicon`.
        label: true class, 0/1 (often late or partial: rows without it count only in label-free metrics).
        text: model input, for groups from text and the counterfactual probe.
    """

    timestamp: str = "timestamp"
    prediction: str = "prediction"
    score: str = "score"
    group: str = "group"
    label: str = "label"
    text: str = "text"


@dataclass
class MonitorConfig:
    """Everything a monitoring run needs besides the logs themselves.

    Args:
        columns: log column names.
        window: `1d`-style duration or a row count.
        threshold: decision threshold on `score` when predictions are not logged.
        positive_label: the positive class when predictions/labels are strings.
        group_axis: lexicon axis for groups derived from text (`gender`, `religion`, ...).
        gap_groups: restrict the gaps to these groups (e.g. female, male); all groups by default.
        min_window_rows / min_group_rows: below these a window or group is flagged small; its alerts are suppressed.
        n_bootstrap / confidence / seed: bootstrap intervals (seeded, so reruns agree).
        alerts: constraints such as `equalized_odds_difference<=0.1` (the `sweep --select` syntax).
        drift_psi / drift_alpha: a drift alert needs PSI at least this and a two-sample p-value below alpha.
        probe_size: counterfactual pairs scored per window (0 turns the probe off).
        probe_axes: axes the probe swaps.
        score_bins: histogram bins on [0, 1] kept per window and group (PSI and KS use them).
    """

    columns: LogColumns = field(default_factory=LogColumns)
    window: Window = field(default_factory=lambda: parse_window("1d"))
    threshold: float = 0.5
    positive_label: str | None = None
    group_axis: str = "gender"
    gap_groups: tuple[str, ...] = ()
    min_window_rows: int = 500
    min_group_rows: int = 100
    n_bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    alerts: tuple[str, ...] = ()
    drift_psi: float = 0.25
    drift_alpha: float = 0.01
    probe_size: int = 64
    probe_axes: tuple[str, ...] = ("gender",)
    score_bins: int = 100

    def __post_init__(self) -> None:
        """Validate early, naming the flag."""
        if isinstance(self.window, (str, int)):
            self.window = parse_window(self.window)
        if not 0.0 < self.confidence < 1.0:
            raise MonitorError(f"--confidence {self.confidence}: must be between 0 and 1, e.g. 0.95.")
        if not 0.0 <= self.threshold <= 1.0:
            raise MonitorError(f"--threshold {self.threshold}: a probability threshold lies in [0, 1].")
        if self.score_bins < 10 or self.score_bins % 10:
            raise MonitorError(f"score_bins {self.score_bins}: use a multiple of 10 (PSI uses 10 bins).")
        from fairtune.augment.lexicon import BUILTIN_AXES

        for axis in (self.group_axis, *self.probe_axes):
            if axis not in BUILTIN_AXES:
                raise MonitorError(f"axis {axis!r}: use one of {', '.join(BUILTIN_AXES)}.")
        if self.min_window_rows < 0 or self.min_group_rows < 0 or self.n_bootstrap < 0 or self.probe_size < 0:
            raise MonitorError("--min-window-rows, --min-group-rows, --n-bootstrap and --probe-size must be >= 0.")
        self.alerts = tuple(self.alerts)
        self.gap_groups = tuple(self.gap_groups)
        self.probe_axes = tuple(self.probe_axes)
