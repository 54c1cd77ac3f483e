"""The evaluation suites: each module has an `Options` dataclass and `run(loaded, options, settings) -> SuiteResult`."""

from __future__ import annotations

import importlib
from types import ModuleType

SUITES = ("group", "subgroup_auc", "counterfactual", "crows_pairs", "stereoset", "bbq", "qa_unqover", "ner_names")
# Suites that can run without a model (from a predictions file).
MODEL_OPTIONAL = ("group", "subgroup_auc")


def get_suite(name: str) -> ModuleType:
    """The module implementing suite `name`."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; available: {', '.join(SUITES)}")
    return importlib.import_module(f"fairtune.evaluation.suites.{name}")
