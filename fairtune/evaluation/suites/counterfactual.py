"""`counterfactual` suite: flip rate and probability gap when inputs are swapped along each protected axis."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.evaluation.predict import classifier_probs
from fairtune.evaluation.tables import load_table, require_columns
from fairtune.metrics.bootstrap import bootstrap_intervals
from fairtune.metrics.counterfactual import counterfactual_consistency

NAME = "counterfactual"


@dataclass
class Options:
    """Options of the `counterfactual` suite.

    Args:
        data: texts to perturb (file or Hub id).
        split: split of a Hub data set.
        text_column: column with the input text.
        axes: protected axes to swap with fairtune's CounterfactualAugmenter, one at a time.
        counterfactual_column: use ready-made counterfactuals from this column instead of the augmenter.
        max_examples: use only the first N rows.
    """

    data: str | None = None
    split: str = "test"
    text_column: str = "text"
    axes: list[str] = field(default_factory=lambda: ["gender"])
    counterfactual_column: str | None = None
    max_examples: int | None = None


def make_pairs(texts: list[str], axes: list[str], seed: int) -> tuple[list[str], list[str], list[str]]:
    """(originals, counterfactuals, axis) for every text the augmenter changes, one axis at a time."""
    from fairtune.augment import CounterfactualAugmenter

    orig, cf, axis_of = [], [], []
    for axis in axes:
        augmenter = CounterfactualAugmenter(axes=(axis,), seed=seed)
        for text in texts:
            swapped = augmenter.counterfactual(text)
            if swapped != text:
                orig.append(text)
                cf.append(swapped)
                axis_of.append(axis)
    return orig, cf, axis_of


def run(loaded: LoadedModel, options: Options, settings: EvalSettings) -> SuiteResult:
    """Classify originals and counterfactuals; `flip_rate` and `ctf_gap` overall and per axis."""
    require_kind(loaded, NAME, ("classifier",))
    if options.data is None:
        raise ValueError("suite 'counterfactual' needs `data` (texts to perturb)")
    df = load_table(options.data, options.split)
    cols = [options.text_column] + ([options.counterfactual_column] if options.counterfactual_column else [])
    require_columns(df, cols, f"data {options.data}", "Set --text-column (or the recipe key) to the right name.")
    if options.max_examples is not None:
        df = df.iloc[: options.max_examples]
    texts = df[options.text_column].astype(str).tolist()
    if options.counterfactual_column:
        pairs = [(t, str(c)) for t, c in zip(texts, df[options.counterfactual_column]) if str(c) != t]
        orig, cf, axis_of = [p[0] for p in pairs], [p[1] for p in pairs], ["given"] * len(pairs)
    else:
        orig, cf, axis_of = make_pairs(texts, list(options.axes), settings.seed)
    if not orig:
        raise ValueError("suite 'counterfactual': no input changed under the swap; check `axes` and the text column")
    probs = classifier_probs(
        loaded.model,
        loaded.tokenizer,
        orig + cf,
        batch_size=settings.batch_size,
        progress=settings.progress,
        desc="counterfactual pairs",
    )
    p_orig, p_cf = probs[: len(orig)], probs[len(orig) :]
    axes_arr = np.asarray(axis_of, dtype=object)
    result = counterfactual_consistency(p_orig, p_cf, axes_arr)

    def for_ci(a, b, ax):
        r = counterfactual_consistency(a, b, ax)
        per = {x: {"flip_rate": r[f"flip_rate_{x}"], "ctf_gap": r[f"ctf_gap_{x}"]} for x in dict.fromkeys(ax.tolist())}
        return {"flip_rate": r["flip_rate"], "ctf_gap": r["ctf_gap"], **per}

    intervals = bootstrap_intervals(
        for_ci,
        [p_orig, p_cf, axes_arr],
        n_resamples=settings.n_bootstrap,
        confidence=settings.confidence,
        seed=settings.seed,
        strata=axes_arr,
    )
    axes_seen = list(dict.fromkeys(axis_of))
    metrics = {"flip_rate": result["flip_rate"], "ctf_gap": result["ctf_gap"]}
    for ax in axes_seen:
        metrics[f"flip_rate_{ax}"] = result[f"flip_rate_{ax}"]
        metrics[f"ctf_gap_{ax}"] = result[f"ctf_gap_{ax}"]
        for m in ("flip_rate", "ctf_gap"):
            if f"{ax}/{m}" in intervals:
                intervals[f"{m}_{ax}"] = intervals[f"{ax}/{m}"]
    examples = [{"original": o, "counterfactual": c, "axis": a} for o, c, a in list(zip(orig, cf, axis_of))[:5]]
    return SuiteResult(
        suite=NAME,
        metrics=metrics,
        intervals=intervals,
        breakdown={
            ax: {
                "flip_rate": result[f"flip_rate_{ax}"],
                "ctf_gap": result[f"ctf_gap_{ax}"],
                "count": result[f"counterfactual_pairs_{ax}"],
            }
            for ax in axes_seen
        },
        breakdown_label="axis",
        plot_columns=["flip_rate", "ctf_gap"],
        details={"counterfactual_pairs": result["counterfactual_pairs"], "n_texts": len(texts), "examples": examples},
        notes=[
            "Only inputs the swap changes count. ctf_gap is the mean |change| of the probability of the originally predicted class."
        ],
    )
