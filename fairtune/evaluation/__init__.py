"""Bias evaluation: suites (group, subgroup_auc, counterfactual, crows_pairs, stereoset, bbq, qa_unqover, ner_names),
results.json / report.md / plots, and the `fairtune evaluate` command."""

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.runner import EvalConfig, evaluate
from fairtune.evaluation.suites import SUITES

__all__ = ["EvalConfig", "EvalSettings", "SuiteResult", "SUITES", "evaluate"]
