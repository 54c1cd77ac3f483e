"""Entity-level NER precision, recall and F1 with seqeval (conlleval semantics), overall and per entity type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def ner_metrics(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, Any]:
    """`precision`, `recall`, `f1` (entity level, seqeval default mode), token `accuracy` and `per_type` scores."""
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

    y_true = [list(t) for t in true_tags]
    y_pred = [list(p) for p in pred_tags]
    if len(y_true) != len(y_pred) or any(len(t) != len(p) for t, p in zip(y_true, y_pred)):
        raise ValueError("ner_metrics: every gold sequence needs a prediction of the same length.")
    if not any(y_true):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.0, "per_type": {}}
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    per_type = {
        k: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for k, v in report.items()
        if k not in ("micro avg", "macro avg", "weighted avg")
    }
    return {
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_type": per_type,
    }
