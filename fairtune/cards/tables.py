"""What fairtune knows about tasks, fairness objectives, metrics and bias axes, and how the Hub names them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fairtune.cards.base import _NOT_METRICS, CONFIG_NAME, CardError, _is_number


@dataclass(frozen=True)
class TaskInfo:
    """How a fairtune task is named on the Hub and in code."""

    key: str
    pipeline_tag: str
    pretty: str
    auto_class_suffix: str
    intended_use: str


TASKS = {
    "classification": TaskInfo(
        "classification",
        "text-classification",
        "Text classification",
        "SequenceClassification",
        "This model assigns one of its labels to a text (or a pair of texts).",
    ),
    "ner": TaskInfo(
        "ner",
        "token-classification",
        "Named entity recognition",
        "TokenClassification",
        "This model tags the entities in a text, token by token.",
    ),
    "qa": TaskInfo(
        "qa",
        "question-answering",
        "Extractive question answering",
        "QuestionAnswering",
        "This model extracts the answer to a question from a context passage.",
    ),
}
_TASK_ALIASES = {
    "text-classification": "classification",
    "sequence-classification": "classification",
    "token-classification": "ner",
    "question-answering": "qa",
    "extractive-qa": "qa",
}


def task_info(task: Any) -> TaskInfo:
    """The TaskInfo of a config's `task` field."""
    key = _TASK_ALIASES.get(str(task), str(task))
    if key not in TASKS:
        raise CardError(f"`task` in {CONFIG_NAME}: unknown task {task!r}; expected one of {', '.join(TASKS)}.")
    return TASKS[key]


@dataclass(frozen=True)
class MetricInfo:
    """How a report key is published: model-index type, display name, and which direction is better."""

    type: str
    name: str
    direction: int  # +1 higher is better, -1 lower is better, 0 neither
    args: dict[str, Any] | None = None


METRICS = {
    "accuracy": MetricInfo("accuracy", "Accuracy", +1),
    "macro_f1": MetricInfo("f1", "Macro F1", +1, {"average": "macro"}),
    "f1": MetricInfo("f1", "F1", +1),
    "exact_match": MetricInfo("exact_match", "Exact match", +1),
    "precision": MetricInfo("precision", "Precision", +1),
    "recall": MetricInfo("recall", "Recall", +1),
    "demographic_parity_difference": MetricInfo("demographic_parity_difference", "Demographic parity difference", -1),
    "equalized_odds_difference": MetricInfo("equalized_odds_difference", "Equalized odds difference", -1),
    "tpr_gap_rms": MetricInfo("tpr_gap_rms", "TPR gap (RMS over groups)", -1),
    "leakage_probe_accuracy": MetricInfo("leakage_probe_accuracy", "Leakage probe accuracy", -1),
    "demographic_parity_ratio": MetricInfo("demographic_parity_ratio", "Demographic parity ratio", +1),
    "equalized_odds_ratio": MetricInfo("equalized_odds_ratio", "Equalized odds ratio", +1),
    "flip_rate": MetricInfo("flip_rate", "Counterfactual flip rate", -1),
    "ctf_gap": MetricInfo("ctf_gap", "Counterfactual token fairness gap", -1),
    "leakage_probe_majority_baseline": MetricInfo(
        "leakage_probe_majority_baseline", "Leakage probe majority baseline", 0
    ),
}
_LOWER_IS_BETTER = ("gap", "difference", "diff", "disparity", "leakage", "bias", "violation", "inconsisten")
_HIGHER_IS_BETTER = ("accuracy", "f1", "exact", "precision", "recall", "auc", "consistency", "ratio")


def metric_info(key: str) -> MetricInfo:
    """The MetricInfo of a report key, with a readable fallback for keys fairtune does not know."""
    bare = re.sub(r"^(eval|test|validation)_", "", key)
    if bare in METRICS:
        return METRICS[bare]
    direction = (
        -1 if any(s in bare for s in _LOWER_IS_BETTER) else +1 if any(s in bare for s in _HIGHER_IS_BETTER) else 0
    )
    return MetricInfo(bare, bare.replace("_", " ").capitalize(), direction)


STANDARD_AXES = {
    "gender": ("gender", "sex", "male", "female", "man", "woman", "men", "women", "non-binary", "nonbinary"),
    "race/ethnicity": ("race", "ethnicity", "black", "white", "asian", "hispanic", "latino", "latina", "latinx"),
    "religion": ("religion", "christian", "muslim", "jewish", "hindu", "buddhist", "atheist"),
    "age": ("age", "young", "old", "elderly"),
    "disability": ("disability", "disabled"),
    "sexual orientation": ("sexual_orientation", "orientation", "sexuality", "gay", "lesbian", "bisexual", "lgbtq"),
    "nationality": ("nationality", "national_origin", "country"),
    "socioeconomic status": ("socioeconomic", "ses", "income", "class"),
}


def is_result_metric(key: str) -> bool:
    """Whether a numeric top-level report key is a result (not a count, a loss, a timing or an adversary log)."""
    if key in _NOT_METRICS or key.endswith(("_ci", "_loss", "runtime", "_per_second")) or key == "loss":
        return False
    return not key.startswith(("adversary_", "train_", "total_flos"))


def _metric_keys(report: Mapping[str, Any] | None) -> list[str]:
    if not report:
        return []
    return [k for k, v in report.items() if _is_number(v) and is_result_metric(k)]
