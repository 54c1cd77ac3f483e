"""Post-hoc per-group decision thresholds for binary classifiers (Hardt et al. 2016), stored with the model.

When retraining is not an option, `fit_thresholds` picks one threshold per group on validation data so that
true positive rates (`equal_opportunity`) or true and false positive rates (`equalized_odds`) match across groups
while keeping accuracy as high as possible. Hardt et al. reach exact equalized odds by randomizing between two
thresholds; fairtune keeps one deterministic threshold per group (what a deployed model can store and apply) and
searches for the closest match, so the remaining gap is reported, not assumed to be zero.

They are saved as `fairtune_thresholds.json` in the model dir. A plain transformers pipeline ignores them: use
`predict_with_thresholds(model_dir, texts, groups)`, which needs each input's group at inference time.

Example:
    >>> from fairtune.thresholds import predict_with_thresholds
    >>> preds = predict_with_thresholds("outputs/my-model", ["some text"], groups=["female"])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLDS_FILE = "fairtune_thresholds.json"
CRITERIA = ("equal_opportunity", "equalized_odds")
PIPELINE_NOTE = (
    "A plain transformers pipeline ignores these thresholds; apply them with fairtune.thresholds.predict_with_thresholds "
    "(or apply_thresholds on positive-class probabilities), passing each input's group."
)


def _key(group: Any) -> str:
    """Thresholds are keyed by the group's string form."""
    return str(group)


def apply_thresholds(scores: Sequence[float], groups: Sequence[Any], thresholds: dict[str, Any]) -> np.ndarray:
    """0/1 predictions: 1 where the positive-class score reaches its group's threshold (the default otherwise)."""
    s = np.asarray(scores, dtype=float)
    table = thresholds["thresholds"]
    default = float(thresholds.get("default_threshold", 0.5))
    t = np.asarray([float(table.get(_key(g), default)) if g is not None else default for g in groups])
    return (s >= t).astype(int)


def _rates(scores: np.ndarray, labels: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TPR, FPR and number correct for each candidate threshold."""
    pred = scores[None, :] >= cand[:, None]
    pos, neg = labels == 1, labels == 0
    tpr = pred[:, pos].mean(1) if pos.any() else np.full(len(cand), np.nan)
    fpr = pred[:, neg].mean(1) if neg.any() else np.full(len(cand), np.nan)
    correct = (pred == (labels[None, :] == 1)).sum(1)
    return tpr, fpr, correct


def _candidates(scores: np.ndarray, max_candidates: int = 256) -> np.ndarray:
    """Candidate thresholds: score quantiles plus one above the maximum (predict nothing positive)."""
    uniq = np.unique(scores)
    if len(uniq) > max_candidates:
        uniq = np.unique(np.quantile(scores, np.linspace(0, 1, max_candidates)))
    return np.concatenate([uniq, [np.nextafter(uniq.max(), np.inf) if len(uniq) else 1.0]])


def fit_thresholds(
    scores: Sequence[float],
    labels: Sequence[int],
    groups: Sequence[Any],
    criterion: str = "equal_opportunity",
    *,
    grid_size: int = 101,
    tolerance: float = 0.01,
) -> dict[str, Any]:
    """Per-group thresholds on positive-class `scores` meeting `criterion` as closely as possible, then max accuracy.

    For each target operating point on a grid (TPR for equal opportunity; TPR x FPR for equalized odds) every
    group takes the threshold closest to it; among the points whose remaining gap is within `tolerance` of the
    smallest gap found, the most accurate one wins.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(int)
    g = np.asarray([_key(x) if x is not None else None for x in groups], dtype=object)
    if set(np.unique(y).tolist()) - {0, 1}:
        raise ValueError("fit_thresholds needs binary labels (0/1)")
    names = sorted({x for x in g.tolist() if x is not None})
    if len(names) < 2:
        raise ValueError(f"need at least two groups to fit per-group thresholds, got {names}")
    per = {}
    for name in names:
        m = g == name
        cand = _candidates(s[m])
        per[name] = (cand, *_rates(s[m], y[m], cand))
    grid = np.linspace(0.0, 1.0, grid_size)
    targets = (
        [(r, None) for r in grid]
        if criterion == "equal_opportunity"
        else [(r, f) for r in grid[::4] for f in grid[::4]]
    )
    best: list[tuple[float, int, dict[str, float]]] = []
    for r, f in targets:
        chosen, correct, tprs, fprs = {}, 0, [], []
        for name, (cand, tpr, fpr, corr) in per.items():
            dist = np.abs(np.nan_to_num(tpr - r, nan=0.0))
            if f is not None:
                dist = np.maximum(dist, np.abs(np.nan_to_num(fpr - f, nan=0.0)))
            i = int(np.argmin(dist))
            chosen[name] = float(cand[i])
            correct += int(corr[i])
            tprs.append(tpr[i])
            fprs.append(fpr[i])
        gap = _spread(tprs) if f is None else max(_spread(tprs), _spread(fprs))
        best.append((gap, correct, chosen))
    min_gap = min(b[0] for b in best)
    gap, _, chosen = max((b for b in best if b[0] <= min_gap + tolerance), key=lambda b: b[1])
    return {
        "criterion": criterion,
        "positive_label": 1,
        "thresholds": chosen,
        "default_threshold": 0.5,
        "validation_gap": float(gap),
        "note": PIPELINE_NOTE,
    }


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
    groups: Sequence[Any],
    *,
    tokenizer: Any = None,
    thresholds: dict[str, Any] | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Class predictions of a binary classifier with its per-group thresholds applied.

    `model` is a model dir (thresholds are read from it) or a loaded model with `tokenizer` and `thresholds`.
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
    if len(texts) != len(groups):
        raise ValueError("predict_with_thresholds: texts and groups must have the same length")
    probs = classifier_probs(model, tokenizer, list(texts), batch_size=batch_size)
    if not thresholds:
        return probs.argmax(1)
    return apply_thresholds(probs[:, thresholds.get("positive_label", 1)], groups, thresholds)
