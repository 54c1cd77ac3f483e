"""Number formatting shared by the markdown report and the plots."""

from __future__ import annotations

import math
from typing import Any


def fmt(value: Any) -> str:
    """3 decimals for rates, 1 for percentages (|v| >= 10), 'n/a' for missing or NaN."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def fmt_interval(interval: Any) -> str:
    """`[lo, hi]` or an empty string."""
    if not interval:
        return ""
    return f"[{fmt(float(interval[0]))}, {fmt(float(interval[1]))}]"


def fmt_change(value: Any, baseline: Any) -> str:
    """Signed difference `value - baseline`."""
    if not isinstance(value, (int, float)) or not isinstance(baseline, (int, float)):
        return ""
    if math.isnan(value) or math.isnan(baseline):
        return "n/a"
    d = float(value) - float(baseline)
    return ("+" if d >= 0 else "") + fmt(d)
