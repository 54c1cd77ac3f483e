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
