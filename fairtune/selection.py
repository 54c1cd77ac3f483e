"""Model selection on the accuracy-fairness trade-off: Pareto fronts, distance to the optimum (DTO), constraints.

DTO follows fairlib (Han et al. 2022, "fairlib: A Unified Framework for Assessing and Improving Fairness"): every
candidate is a point (performance, fairness) with fairness = 1 - gap, both higher-is-better. The utopia point
holds the best performance and the best fairness over the candidates. Each coordinate is divided by its utopia
value, and DTO is the Euclidean distance from the normalised point to (1, 1):

    DTO = sqrt((p / p* - 1)^2 + (f / f* - 1)^2),   f = S - g,   f* = S - min(g)

where `p` is the task metric (e.g. accuracy), `g` the fairness gap (e.g. `tpr_gap_rms`, fairlib's GAP) and `S` the
scale of the gap: 1 for rates, 100 for metrics reported in percent (QA F1 gaps); it is 100 when any value exceeds 1.
Smaller is better; 0 is the utopia itself. A fairness metric where higher is better (a ratio) is used as `f` as is.

Outside a sweep (one evaluation during training) there are no candidates: `selection_metrics` measures the distance
to the absolute optimum (p* = S, gap 0) unless a reference utopia is given, so early stopping and
`load_best_model_at_end` can use `metric_for_best_model: dto` with `greater_is_better: false`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PERFORMANCE_METRICS = ("accuracy", "f1", "exact_match", "macro_f1")
FAIRNESS_METRICS = (
    "tpr_gap_rms",
    "equalized_odds_difference",
    "f1_gap",
    "recall_gap",
    "exact_match_gap",
    "demographic_parity_difference",
)
_LOWER_IS_BETTER = re.compile(r"(gap|difference|flip_rate|loss|leakage|dto|disparity|error)")
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+%?)\s*$")


class NoQualifyingRunError(ValueError):
    """No candidate satisfies the selection constraint(s)."""


def higher_is_better(metric: str) -> bool:
    """Direction of a metric: gaps, differences, flip rates, losses, leakage and DTO are lower-is-better."""
    name = metric.removeprefix("eval_").removeprefix("test_")
    if name.endswith("_ratio"):
        return True
    return not _LOWER_IS_BETTER.search(name)


def default_metric(metrics: Mapping[str, Any], candidates: Sequence[str]) -> str | None:
    """The first of `candidates` present as a finite number in `metrics`."""
    for name in candidates:
        value = metrics.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return name
    return None


@dataclass(frozen=True)
class Constraint:
    """`metric op value`, e.g. `tpr_gap_rms <= 0.05`."""

    metric: str
    op: str
    value: float

    def satisfied(self, metrics: Mapping[str, Any]) -> bool:
        """Whether `metrics` meets the constraint (a missing or non-finite value does not)."""
        v = metrics.get(self.metric)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        return bool(_OPS[self.op](float(v), self.value))

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """How far `metrics` is from meeting the constraint (0 when met, inf when the metric is missing)."""
        v = metrics.get(self.metric)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return math.inf
        if self.satisfied(metrics):
            return 0.0
        return abs(float(v) - self.value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def parse_constraints(text: str) -> list[Constraint]:
    """Parse `metric<=v[, metric>=v ...]` (also joined by ` and `); a trailing `%` divides the value by 100."""
    if not text or not text.strip():
        raise ValueError("empty constraint; write e.g. `tpr_gap_rms<=0.05`.")
    parts = [p for p in re.split(r",|\band\b", text) if p.strip()]
    out = []
    for part in parts:
        m = _CONSTRAINT.match(part)
        if m is None:
            raise ValueError(
                f"cannot read the constraint {part.strip()!r}; write METRIC<=VALUE (operators <=, >=, <, >, ==), "
                "e.g. `tpr_gap_rms<=0.05` or `accuracy>=0.9,tpr_gap_rms<=0.05`."
            )
        name, op, raw = m.groups()
        try:
            value = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
        except ValueError:
            raise ValueError(f"constraint {part.strip()!r}: {raw!r} is not a number.") from None
        out.append(Constraint(name, op, value))
    return out


@dataclass(frozen=True)
class Criterion:
    """How to pick one candidate: `dto` (closest to the utopia point) or best `performance` under `constraints`."""

    kind: str = "dto"
    performance: str | None = None
    fairness: str | None = None
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """A one-line description for reports."""
        if self.kind == "dto":
            return f"DTO: distance to the utopia point of ({self.performance}, 1 - {self.fairness}), smaller is better"
        return f"best {self.performance} subject to {' and '.join(str(c) for c in self.constraints)}"

    def resolve(self, metrics: Mapping[str, Any]) -> Criterion:
        """Fill in the performance and fairness metrics from those present in `metrics`."""
        perf = self.performance or default_metric(metrics, PERFORMANCE_METRICS)
        fair = self.fairness or default_metric(metrics, FAIRNESS_METRICS)
        if perf is None:
            raise ValueError(f"no task metric among {PERFORMANCE_METRICS} in the reports; pass --task-metric.")
        if fair is None and self.kind == "dto":
            raise ValueError(f"no fairness metric among {FAIRNESS_METRICS} in the reports; pass --fairness-metric.")
        return Criterion(self.kind, perf, fair, self.constraints)


def parse_criterion(text: str | None, performance: str | None = None, fairness: str | None = None) -> Criterion:
    """`dto` (default) or a constraint such as `tpr_gap_rms<=0.05` (best `performance` subject to it)."""
    text = (text or "dto").strip()
    if text.lower() == "dto":
        return Criterion("dto", performance, fairness)
    constraints = tuple(parse_constraints(text))
    if fairness is None:
        fairness = next((c.metric for c in constraints if not higher_is_better(c.metric)), None)
    return Criterion("constraint", performance, fairness, constraints)


def _scale(values: Sequence[float]) -> float:
    return 100.0 if any(abs(v) > 1.0 for v in values if math.isfinite(v)) else 1.0


def fairness_scores(values: Sequence[float], metric: str, scale: float | None = None) -> list[float]:
    """Higher-is-better fairness: `S - gap` for lower-is-better metrics (S = 1, or 100 for percentages)."""
    if higher_is_better(metric):
        return [float(v) for v in values]
    s = _scale(values) if scale is None else scale
    return [s - float(v) for v in values]


def dto(
    performance: Sequence[float],
    fairness: Sequence[float],
    utopia_performance: float | None = None,
    utopia_fairness: float | None = None,
) -> list[float]:
    """fairlib's DTO of each candidate: distance of (p/p*, f/f*) to (1, 1); both inputs higher-is-better."""
    p = [float(v) for v in performance]
    f = [float(v) for v in fairness]
    finite_p = [v for v in p if math.isfinite(v)]
    finite_f = [v for v in f if math.isfinite(v)]
    up = max(finite_p) if utopia_performance is None and finite_p else utopia_performance
    uf = max(finite_f) if utopia_fairness is None and finite_f else utopia_fairness
    out = []
    for pi, fi in zip(p, f):
        if up is None or uf is None or not (math.isfinite(pi) and math.isfinite(fi)) or up == 0 or uf == 0:
            out.append(math.inf)
            continue
        out.append(math.hypot(pi / up - 1.0, fi / uf - 1.0))
    return out


def pareto_front(performance: Sequence[float], gaps: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (performance at least as high and gap at least as low, one strictly)."""
    pts = [(float(p), float(g)) for p, g in zip(performance, gaps)]
    out = []
    for i, (pi, gi) in enumerate(pts):
        if not (math.isfinite(pi) and math.isfinite(gi)):
            out.append(False)
            continue
        dominated = any(j != i and pj >= pi and gj <= gi and (pj > pi or gj < gi) for j, (pj, gj) in enumerate(pts))
        out.append(not dominated)
    return out


def selection_metrics(
    metrics: Mapping[str, Any],
    reference: Mapping[str, float] | None = None,
    performance: str | None = None,
    fairness: str | None = None,
) -> dict[str, float]:
    """`{"dto": ...}` for one evaluation: distance to `reference` (a utopia {metric: value}) or to (S, gap 0).

    Pure and cheap, for `FairTrainer._compute_fair_metrics`: returns {} when the metrics hold no task or
    fairness metric. Keys may carry an `eval_`/`test_` prefix; the utopia keys are the bare metric names.
    """
    bare = {str(k).split("_", 1)[1] if str(k).startswith(("eval_", "test_")) else k: v for k, v in metrics.items()}
    perf = performance or default_metric(bare, PERFORMANCE_METRICS)
    fair = fairness or default_metric(bare, FAIRNESS_METRICS)
    if perf is None or fair is None or perf not in bare or fair not in bare:
        return {}
    p, g = float(bare[perf]), float(bare[fair])
    scale = _scale([p, g])
    ref = dict(reference or {})
    up = float(ref.get(perf, scale))
    if higher_is_better(fair):
        f, uf = g, float(ref.get(fair, scale))
    else:
        f, uf = scale - g, scale - float(ref.get(fair, 0.0))
    return {"dto": dto([p], [f], up, uf)[0]}


@dataclass
class Selection:
    """The outcome of `select`: the chosen index, every candidate's score and a human-readable reason."""

    index: int
    scores: list[float]
    criterion: Criterion
    message: str
    qualifying: list[bool]
    utopia: dict[str, float] = field(default_factory=dict)


def select(rows: Sequence[Mapping[str, Any]], criterion: Criterion) -> Selection:
    """Pick one row of metrics: smallest DTO, or best task metric among rows meeting every constraint.

    Raises `NoQualifyingRunError` (with the closest candidate named) when no row meets the constraints.
    """
    if not rows:
        raise ValueError("nothing to select from: no finished run has a fairness report.")
    crit = criterion.resolve(rows[0])
    perf = [_num(r.get(crit.performance)) for r in rows]
    if crit.kind == "dto":
        gaps = [_num(r.get(crit.fairness)) for r in rows]
        fair = fairness_scores(gaps, crit.fairness, scale=_scale(perf + gaps))
        scores = dto(perf, fair)
        best = min(range(len(rows)), key=lambda i: (scores[i], -perf[i]))
        if not math.isfinite(scores[best]):
            raise ValueError(f"no run reports both {crit.performance} and {crit.fairness}.")
        utopia = {crit.performance: max(v for v in perf if math.isfinite(v))}
        finite_g = [v for v in gaps if math.isfinite(v)]
        utopia[crit.fairness] = (max if higher_is_better(crit.fairness) else min)(finite_g)
        msg = f"smallest DTO {scores[best]:.4f} (utopia {crit.performance}={utopia[crit.performance]:.4f}, "
        msg += f"{crit.fairness}={utopia[crit.fairness]:.4f})"
        return Selection(best, scores, crit, msg, [True] * len(rows), utopia)
    for c in crit.constraints:
        if not any(c.metric in r for r in rows):
            known = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float))})
            raise ValueError(f"constraint {c}: no run reports {c.metric!r}; known metrics: {', '.join(known)}.")
    ok = [all(c.satisfied(r) for c in crit.constraints) for r in rows]
    sign = 1.0 if higher_is_better(crit.performance) else -1.0
    scores = [sign * p if q else -math.inf for p, q in zip(perf, ok)]
    if not any(ok):
        closest = min(range(len(rows)), key=lambda i: sum(c.violation(rows[i]) for c in crit.constraints))
        values = ", ".join(f"{c.metric}={_num(rows[closest].get(c.metric)):.4f}" for c in crit.constraints)
        raise NoQualifyingRunError(
            f"no run satisfies {' and '.join(str(c) for c in crit.constraints)}; the closest has {values}. "
            "Loosen the constraint, raise the fairness weights in --grid, or select with `--select dto`."
        )
    best = max(range(len(rows)), key=lambda i: scores[i])
    msg = f"best {crit.performance} {perf[best]:.4f} among {sum(ok)}/{len(rows)} meeting the constraint"
    return Selection(best, scores, crit, msg, ok)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
