"""Post-hoc per-group decision rules (Hardt et al. 2016), for any number of classes and groups, stored with the model.

When retraining is not an option, `fit_thresholds` fits one decision rule per group on validation data so that
the chosen rates match across groups while keeping accuracy as high as possible:

- binary scores (`[N]` positive-class scores, or `[N, 2]` probabilities): one threshold per group, found by a grid
  search over operating points (deterministic: what a deployed model can store and apply; the remaining gap is
  reported), or with `randomized=True` Hardt et al.'s mix of two thresholds per group, which meets the
  constraint exactly in expectation (`fairtune.posthoc.randomized`; seeded, and the seed is stored).
- multiclass probabilities `[N, K]`: per-group, per-class offsets on log-probabilities
  (`fairtune.posthoc.offsets`), one-vs-rest rate parity per class.

Criteria: `equal_opportunity` (TPR), `equalized_odds` (TPR and FPR), `demographic_parity` (selection rate).

The rules are saved as `fairtune_thresholds.json` in the model dir. A plain transformers pipeline ignores them:
use `predict_with_thresholds(model_dir, texts, groups)`, which needs each input's group at inference time, or
store a group probe (`fairtune.posthoc.group_probe`) to predict the group from the representation.

Example:
    >>> from fairtune.posthoc.thresholds import predict_with_thresholds
    >>> preds = predict_with_thresholds("outputs/my-model", ["some text"], groups=["female"])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fairtune.posthoc.offsets import apply_offsets, fit_offsets
from fairtune.posthoc.randomized import fit_randomized, positive_probability

THRESHOLDS_FILE = "fairtune_thresholds.json"
CRITERIA = ("equal_opportunity", "equalized_odds", "demographic_parity")
PIPELINE_NOTE = (
    "A plain transformers pipeline ignores these thresholds; apply them with "
    "fairtune.posthoc.thresholds.predict_with_thresholds (or apply_thresholds on the class probabilities), "
    "passing each input's group."
)


def _key(group: Any) -> str:
    """Thresholds are keyed by the group's string form."""
    return str(group)


def _group_keys(groups: Sequence[Any]) -> np.ndarray:
    return np.asarray([_key(x) if x is not None else None for x in groups], dtype=object)


def positive_probabilities(scores: Sequence[float], groups: Sequence[Any], thresholds: dict[str, Any]) -> np.ndarray:
    """P(y_hat = 1) per row under binary rules: 0/1 for deterministic thresholds, in [0, 1] for randomized ones."""
    s = np.asarray(scores, dtype=float)
    g = _group_keys(groups)
    default = float(thresholds.get("default_threshold", 0.5))
    out = (s >= default).astype(float)
    if thresholds.get("randomized"):
        for name, rule in thresholds["rules"].items():
            m = g == name
            out[m] = positive_probability(s[m], rule)
        return out
    for name, t in thresholds["thresholds"].items():
        m = g == name
        out[m] = (s[m] >= float(t)).astype(float)
    return out


def apply_thresholds(
    scores: Sequence[float] | np.ndarray, groups: Sequence[Any], thresholds: dict[str, Any]
) -> np.ndarray:
    """Class predictions under the fitted rules (rows of an unknown or missing group get the default rule).

    `scores` are positive-class scores for binary rules (or `[N, 2]` probabilities) and `[N, K]` probabilities for
    multiclass offsets. Randomized rules draw from a generator seeded with the stored `seed`, so the same inputs
    in the same order give the same predictions.
    """
    s = np.asarray(scores, dtype=float)
    if thresholds.get("kind") == "multiclass":
        if s.ndim != 2:
            raise ValueError("multiclass offsets need [N, K] class probabilities")
        logp = np.log(np.clip(s, 1e-12, 1.0))
        return apply_offsets(logp, _group_keys(groups), thresholds["offsets"])
    if s.ndim == 2:
        s = s[:, int(thresholds.get("positive_label", 1))]
    prob = positive_probabilities(s, groups, thresholds)
    if not thresholds.get("randomized"):
        return prob.astype(int)
    rng = np.random.default_rng(int(thresholds.get("seed", 0)))
    return (rng.random(len(prob)) < prob).astype(int)


def _rates(scores: np.ndarray, labels: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, ...]:
    """TPR, FPR, selection rate and number correct for each candidate threshold."""
    pred = scores[None, :] >= cand[:, None]
    pos, neg = labels == 1, labels == 0
    tpr = pred[:, pos].mean(1) if pos.any() else np.full(len(cand), np.nan)
    fpr = pred[:, neg].mean(1) if neg.any() else np.full(len(cand), np.nan)
    sel = pred.mean(1)
    correct = (pred == (labels[None, :] == 1)).sum(1)
    return tpr, fpr, sel, correct


def _candidates(scores: np.ndarray, max_candidates: int = 256) -> np.ndarray:
    """Candidate thresholds: score quantiles plus one above the maximum (predict nothing positive)."""
    uniq = np.unique(scores)
    if len(uniq) > max_candidates:
        uniq = np.unique(np.quantile(scores, np.linspace(0, 1, max_candidates)))
    return np.concatenate([uniq, [np.nextafter(uniq.max(), np.inf) if len(uniq) else 1.0]])


def _deterministic(
    s: np.ndarray, y: np.ndarray, g: np.ndarray, names: list[str], criterion: str, grid_size: int, tolerance: float
) -> tuple[dict[str, float], float]:
    """One threshold per group: for each target operating point every group takes its closest threshold; among the
    points whose gap is within `tolerance` of the smallest, the most accurate wins."""
    per = {}
    for name in names:
        m = g == name
        cand = _candidates(s[m])
        per[name] = (cand, *_rates(s[m], y[m], cand))
    grid = np.linspace(0.0, 1.0, grid_size)
    targets = (
        [(r, f) for r in grid[::4] for f in grid[::4]] if criterion == "equalized_odds" else [(r, None) for r in grid]
    )
    best: list[tuple[float, int, dict[str, float]]] = []
    for r, f in targets:
        chosen, correct, firsts, seconds = {}, 0, [], []
        for name, (cand, tpr, fpr, sel, corr) in per.items():
            first = sel if criterion == "demographic_parity" else tpr
            dist = np.abs(np.nan_to_num(first - r, nan=0.0))
            if f is not None:
                dist = np.maximum(dist, np.abs(np.nan_to_num(fpr - f, nan=0.0)))
            i = int(np.argmin(dist))
            chosen[name] = float(cand[i])
            correct += int(corr[i])
            firsts.append(first[i])
            seconds.append(fpr[i])
        gap = _spread(firsts) if f is None else max(_spread(firsts), _spread(seconds))
        best.append((gap, correct, chosen))
    min_gap = min(b[0] for b in best)
    gap, _, chosen = max((b for b in best if b[0] <= min_gap + tolerance), key=lambda b: b[1])
    return chosen, float(gap)


def fit_thresholds(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int],
    groups: Sequence[Any],
    criterion: str = "equal_opportunity",
    *,
    randomized: bool = False,
    seed: int = 0,
    sample_weight: Sequence[float] | None = None,
    positive_label: int = 1,
    grid_size: int = 101,
    tolerance: float = 0.01,
    accuracy_weight: float = 0.5,
) -> dict[str, Any]:
    """Per-group rules meeting `criterion` as closely as possible, then maximising accuracy (module docstring).

    Args:
        scores: `[N]` positive-class scores, `[N, 2]` or `[N, K]` class probabilities.
        labels: class ids; groups: one group per row (None: left out of the fit, default rule at inference).
        criterion: `equal_opportunity`, `equalized_odds` or `demographic_parity`.
        randomized: binary only; mix two thresholds per group (Hardt et al.) for exact parity in expectation.
        seed: seed of the randomized predictions, stored in the result.
        sample_weight: binary randomized only; weights of the validation rows.
        grid_size, tolerance: the deterministic search (binary); accuracy_weight: the multiclass trade-off.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(int)
    g = _group_keys(groups)
    if len(s) != len(y) or len(y) != len(g):
        raise ValueError(f"scores, labels and groups must have the same length, got {len(s)}, {len(y)}, {len(g)}")
    if sample_weight is not None and not randomized:
        raise ValueError("sample_weight is supported with randomized=True (binary); drop it or set randomized")
    keep = np.asarray([x is not None for x in g.tolist()], dtype=bool)
    names = sorted({x for x in g[keep].tolist()})
    if len(names) < 2:
        raise ValueError(f"need at least two groups to fit per-group thresholds, got {names}")
    if s.ndim == 2 and s.shape[1] > 2:
        if randomized:
            raise ValueError("randomized=True is for binary classifiers; multiclass rules are per-class offsets")
        fitted = fit_offsets(s[keep], y[keep], g[keep], names, criterion, accuracy_weight=accuracy_weight)
        return {
            "kind": "multiclass",
            "criterion": criterion,
            "num_labels": int(s.shape[1]),
            **fitted,
            "note": PIPELINE_NOTE,
        }
    if s.ndim == 2:
        s = s[:, positive_label]
    if set(np.unique(y).tolist()) - {0, 1}:
        raise ValueError("binary thresholds need 0/1 labels; pass [N, K] probabilities for a multiclass classifier")
    out: dict[str, Any] = {"kind": "binary", "criterion": criterion, "positive_label": positive_label}
    out["default_threshold"] = 0.5
    if randomized:
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)[keep]
        fitted = fit_randomized(s[keep], y[keep], g[keep], names, criterion, sample_weight=w)
        out.update(randomized=True, seed=int(seed), **fitted)
        out["validation_gap"] = _expected_gap(s[keep], y[keep], g[keep], names, criterion, out)
    else:
        chosen, gap = _deterministic(s[keep], y[keep], g[keep], names, criterion, grid_size, tolerance)
        out.update(randomized=False, thresholds=chosen, validation_gap=gap)
    out["note"] = PIPELINE_NOTE
    return out


def _expected_gap(
    s: np.ndarray, y: np.ndarray, g: np.ndarray, names: list[str], criterion: str, rules: dict[str, Any]
) -> float:
    """Largest between-group difference of the expected rates under randomized rules."""
    prob = positive_probabilities(s, g, rules)
    firsts, fprs = [], []
    for n in names:
        m = g == n
        pos, neg = m & (y == 1), m & (y == 0)
        firsts.append(
            prob[m].mean() if criterion == "demographic_parity" else (prob[pos].mean() if pos.any() else 0.0)
        )
        fprs.append(prob[neg].mean() if neg.any() else 0.0)
    gap = _spread(firsts)
    return float(max(gap, _spread(fprs)) if criterion == "equalized_odds" else gap)


def _spread(values: list[float]) -> float:
    """Largest minus smallest of the defined values."""
    v = [x for x in values if np.isfinite(x)]
    return float(max(v) - min(v)) if len(v) > 1 else 0.0


def save_thresholds(model_dir: str | Path, thresholds: dict[str, Any]) -> Path:
    """Write `fairtune_thresholds.json` into the model dir."""
    path = Path(model_dir) / THRESHOLDS_FILE
    path.write_text(json.dumps(thresholds, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_thresholds(model_dir: str | Path) -> dict[str, Any] | None:
    """The thresholds stored with a model, or None."""
    path = Path(model_dir) / THRESHOLDS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def predict_with_thresholds(
    model: Any,
    texts: Sequence[str],
    groups: Sequence[Any] | None = None,
    *,
    tokenizer: Any = None,
    thresholds: dict[str, Any] | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Class predictions of a classifier with its per-group rules applied.

    `model` is a model dir (thresholds are read from it) or a loaded model with `tokenizer` and `thresholds`.
    Without `groups`, the stored group probe (if any) predicts each input's group from the representation.
    Without stored thresholds this is plain argmax.
    """
    from fairtune.evaluation.predict import classifier_probs

    if isinstance(model, (str, Path)):
        from fairtune.evaluation.models import load_model

        thresholds = thresholds or load_thresholds(model)
        loaded = load_model(str(model), kind="classifier")
        model, tokenizer = loaded.model, loaded.tokenizer
    if tokenizer is None:
        raise ValueError("predict_with_thresholds: pass `tokenizer` with a loaded model")
    if groups is not None and len(texts) != len(groups):
        raise ValueError("predict_with_thresholds: texts and groups must have the same length")
    probs = classifier_probs(model, tokenizer, list(texts), batch_size=batch_size)
    if not thresholds:
        return probs.argmax(1)
    if groups is None:
        if not thresholds.get("group_probe"):
            raise ValueError(
                "predict_with_thresholds: pass `groups`, or fit the thresholds with --infer-groups so that a group "
                "probe is stored"
            )
        from fairtune.posthoc.erasure import head_inputs
        from fairtune.posthoc.group_probe import predict_group

        groups = predict_group(thresholds["group_probe"], head_inputs(model, tokenizer, list(texts), batch_size))
    return apply_thresholds(probs, groups, thresholds)
