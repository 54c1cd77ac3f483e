"""`group` suite: per-group accuracy, F1, TPR, FPR, selection rate and the parity gaps, with bootstrap intervals.

With scores (the model's probabilities, or a `score` column in a predictions file) on binary data it adds the
bias coefficient (`fairtune.metrics.residuals`): each group's mean residual (label minus positive-class score) in
the per-group table and the spread between groups, `bias_coefficient_gap`, as a headline metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.evaluation.predict import classifier_probs
from fairtune.evaluation.tables import encode_labels, load_table, require_columns
from fairtune.metrics.bootstrap import bootstrap_intervals
from fairtune.metrics.group import HEADLINE_METRICS
from fairtune.metrics.residuals import bias_coefficient

NAME = "group"
HEADLINE = HEADLINE_METRICS


@dataclass
class Options:
    """Options of the `group` suite.

    Args:
        data: labelled data with a group column (file or Hub id), classified with the model.
        predictions: instead of a model, a json/jsonl/csv file with `prediction`, `label`, `group` columns (and
            optionally `score`, the positive-class probability, for the bias coefficient).
        split: split of a Hub data set.
        text_column, label_column, group_column: column names in `data`.
        max_examples: evaluate only the first N rows.
        use_thresholds: apply `fairtune_thresholds.json` from the model dir when present (binary thresholds or
            multiclass per-group offsets).
    """

    data: str | None = None
    predictions: str | None = None
    split: str = "test"
    text_column: str = "text"
    label_column: str = "label"
    group_column: str = "group"
    max_examples: int | None = None
    use_thresholds: bool = True


@dataclass
class GroupInputs:
    """Row-aligned labels, predictions, groups, (for a model) class probabilities, and positive-class scores."""

    y_true: np.ndarray
    y_pred: np.ndarray
    groups: np.ndarray
    probs: np.ndarray | None = None
    scores: np.ndarray | None = None


def predictions_inputs(path: str) -> GroupInputs:
    """Read a predictions file (json, jsonl or csv with prediction, label, group)."""
    df = load_table(path)
    require_columns(df, ["prediction", "label", "group"], f"predictions file {path}")
    scores = None
    if "score" in df.columns:
        scores = np.asarray(df["score"], dtype=float)
        if not np.all((scores >= 0) & (scores <= 1)):
            raise ValueError(f"predictions file {path}: `score` must be the positive-class probability, in [0, 1].")
    return GroupInputs(
        y_true=encode_labels(df["label"], None),
        y_pred=encode_labels(df["prediction"], None),
        groups=np.asarray([None if _na(g) else g for g in df["group"]], dtype=object),
        scores=scores,
    )


def _na(value: Any) -> bool:
    """Missing-value test that works for strings and numbers."""
    try:
        return bool(value != value) or value is None
    except (TypeError, ValueError):
        return False


def model_inputs(loaded: LoadedModel, options: Options, settings: EvalSettings) -> GroupInputs:
    """Classify `options.data` with the model and collect labels and groups."""
    if options.data is None:
        raise ValueError("suite 'group' needs `data` (with a model) or `predictions` (a predictions file)")
    df = load_table(options.data, options.split)
    hint = "Set --text-column/--label-column/--group-column (or the recipe keys) to the right names."
    require_columns(
        df, [options.text_column, options.label_column, options.group_column], f"data {options.data}", hint
    )
    if options.max_examples is not None:
        df = df.iloc[: options.max_examples]
    probs = classifier_probs(
        loaded.model,
        loaded.tokenizer,
        df[options.text_column].astype(str).tolist(),
        batch_size=settings.batch_size,
        progress=settings.progress,
    )
    return GroupInputs(
        y_true=encode_labels(df[options.label_column], getattr(loaded.model.config, "label2id", None)),
        y_pred=probs.argmax(1),
        groups=np.asarray([None if _na(g) else g for g in df[options.group_column]], dtype=object),
        probs=probs,
        scores=probs[:, 1] if probs.shape[1] == 2 else None,
    )


def group_metrics_with_intervals(
    inputs: GroupInputs, settings: EvalSettings, labels: list[int]
) -> tuple[dict[str, Any], dict[str, tuple[float, float]]]:
    """Metrics from `fairtune.metrics.group` and bootstrap intervals keyed like the report expects."""
    from fairtune.metrics.group import group_fairness_metrics

    with_scores = inputs.scores is not None and len(labels) <= 2

    def fn(yt, yp, g, *s):
        r = group_fairness_metrics(yt, yp, list(g), labels=labels)
        out = {**{k: r[k] for k in HEADLINE}, **r["per_group"]}
        if s:
            bias = bias_coefficient(yt, s[0], list(g))
            out["bias_coefficient_gap"] = bias["bias_coefficient_gap"]
            for group, stats in bias["per_group"].items():
                out.setdefault(group, {})["mean_residual"] = stats["mean_residual"]
        return out

    result = group_fairness_metrics(inputs.y_true, inputs.y_pred, list(inputs.groups), labels=labels)
    if with_scores:
        bias = bias_coefficient(inputs.y_true, inputs.scores, list(inputs.groups), confidence=settings.confidence)
        result["bias_coefficient_gap"] = bias["bias_coefficient_gap"]
        for group, stats in bias["per_group"].items():
            if group in result["per_group"]:
                result["per_group"][group].update(
                    {k: stats[k] for k in ("mean_residual", "residual_std") if k in stats}
                )
    arrays = [inputs.y_true, inputs.y_pred, inputs.groups] + ([inputs.scores] if with_scores else [])
    intervals = bootstrap_intervals(
        fn,
        arrays,
        n_resamples=settings.n_bootstrap,
        confidence=settings.confidence,
        seed=settings.seed,
        progress=settings.progress,
    )
    return result, intervals


def run(
    loaded: LoadedModel | None, options: Options, settings: EvalSettings, thresholds: dict[str, Any] | None = None
) -> SuiteResult:
    """Group fairness of a classifier (or a predictions file); thresholded when the model ships thresholds."""
    if options.predictions:
        inputs = predictions_inputs(options.predictions)
    else:
        if loaded is None:
            raise ValueError("suite 'group' needs a model (--model) with `data`, or a `predictions` file")
        require_kind(loaded, NAME, ("classifier",))
        inputs = model_inputs(loaded, options, settings)
    n_labels = inputs.probs.shape[1] if inputs.probs is not None else None
    labels = list(range(n_labels)) if n_labels else sorted(set(inputs.y_true.tolist()) | set(inputs.y_pred.tolist()))
    notes = []
    details: dict[str, Any] = {"n_examples": int(len(inputs.y_true)), "source": options.predictions or options.data}
    if thresholds and options.use_thresholds and inputs.probs is not None:
        from fairtune.posthoc.thresholds import apply_thresholds

        raw, _ = group_metrics_with_intervals(
            GroupInputs(inputs.y_true, inputs.y_pred, inputs.groups), EvalSettings(n_bootstrap=0), labels
        )
        details["without_thresholds"] = {k: raw[k] for k in HEADLINE}
        inputs.y_pred = apply_thresholds(inputs.probs, inputs.groups, thresholds)  # binary rules or class offsets
        details["thresholds"] = thresholds
        notes.append(
            f"Per-group decision thresholds ({thresholds.get('criterion')}) from fairtune_thresholds.json are applied."
        )
    result, intervals = group_metrics_with_intervals(inputs, settings, labels)
    binary = len(labels) <= 2
    if "bias_coefficient_gap" in result:
        notes.append(
            "bias_coefficient_gap: the spread (max - min over groups) of each group's mean residual, label minus the "
            "positive-class score (per group: mean_residual); 0 when every group is mis-scored alike."
        )
    details["per_group"] = result["per_group"]
    return SuiteResult(
        suite=NAME,
        metrics={k: result[k] for k in (*HEADLINE, "bias_coefficient_gap") if k in result},
        intervals=intervals,
        breakdown=result["per_group"],
        breakdown_label="group",
        plot_columns=["selection_rate", "tpr"] if binary else ["accuracy", "f1"],
        details=details,
        notes=notes,
    )
