"""SQuAD exact match and F1, computed exactly as the official SQuAD v1.1 evaluation script (v2.0 for no-answers).

Own code, offline: `normalize_answer` lower-cases, removes punctuation, the articles a/an/the and extra white
space; EM and F1 take the maximum over the gold answers; totals are percentages. A question whose gold answers are
all empty (SQuAD v2 "no answer") scores 1 only for an empty prediction, as the v2.0 script does.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official SQuAD v1.1)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-overlap F1 of two answers after normalisation (official v1.1; both empty = 1, as in v2.0)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    """1.0 when the normalised answers are equal."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric, prediction: str, ground_truths: Sequence[str]) -> float:
    """The best score of `prediction` against any gold answer (no gold answer = the empty answer)."""
    golds = [g for g in ground_truths if normalize_answer(g)] or [""]
    return max(metric(prediction, g) for g in golds)


def squad_scores(prediction: str, ground_truths: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of one prediction, each in [0, 1]."""
    return (
        metric_max_over_ground_truths(exact_match_score, prediction, ground_truths),
        metric_max_over_ground_truths(f1_score, prediction, ground_truths),
    )


def squad_metrics(predictions: Mapping[str, str], references: Mapping[str, Iterable[str]]) -> dict[str, float]:
    """`exact_match` and `f1` (percentages) over the questions of `references`; a missing prediction scores 0."""
    if not references:
        return {"exact_match": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for qid, golds in references.items():
        golds = list(golds)
        if qid not in predictions:
            continue
        e, f = squad_scores(predictions[qid], golds)
        em += e
        f1 += f
    n = len(references)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}
