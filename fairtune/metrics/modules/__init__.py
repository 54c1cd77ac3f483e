"""`evaluate` modules for fairtune's metrics, loadable offline with `evaluate.load(module_path(name))`."""

from __future__ import annotations

from pathlib import Path

MODULES = (
    "group_fairness",
    "counterfactual_consistency",
    "crows_pairs",
    "stereoset",
    "bbq",
    "subgroup_auc",
    "unqover",
    "ner_name_recall",
)


def module_path(name: str) -> str:
    """Folder of the `evaluate` module `name` (pass it to `evaluate.load`)."""
    if name not in MODULES:
        raise ValueError(f"unknown metric module {name!r}; available: {', '.join(MODULES)}")
    return str(Path(__file__).resolve().parent / name)


def metric_info(description: str, inputs_description: str, features: dict):
    """The `evaluate.MetricInfo` every fairtune module returns: its description, inputs and feature types."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description,
        citation="See the fairtune README, section Metrics, for the paper this metric follows.",
        inputs_description=inputs_description,
        features=datasets.Features(features),
    )
