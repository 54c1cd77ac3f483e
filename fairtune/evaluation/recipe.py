"""Evaluation recipes: a flat YAML (`suites: [...]`, run settings, one mapping of options per suite) + CLI flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fairtune.evaluation.base import EvalSettings
from fairtune.evaluation.runner import EvalConfig
from fairtune.evaluation.suites import SUITES, get_suite

TOP_LEVEL = ("model", "model_kind", "baseline", "output_dir", "suites")
SETTINGS = tuple(f.name for f in dataclasses.fields(EvalSettings))
# CLI flags that apply to every selected suite having an option of that name.
SHARED_FLAGS = ("data", "predictions", "text_column", "label_column", "group_column", "max_examples")


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read and validate a recipe YAML (unknown keys are an error naming the valid ones)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe is a mapping with `suites: [...]`")
    valid = set(TOP_LEVEL) | set(SETTINGS) | set(SUITES)
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    return data


def build_config(recipe: dict[str, Any], overrides: dict[str, Any]) -> EvalConfig:
    """Merge a recipe with CLI overrides (flags win) into an EvalConfig, validating suites and their options."""
    suites = overrides.get("suites") or recipe.get("suites") or []
    if isinstance(suites, str):
        suites = [suites]
    suites = [s.strip() for item in suites for s in str(item).split(",") if s.strip()]
    if not suites:
        raise ValueError(
            f"no suite selected: give --suite NAME or `suites:` in the recipe (available: {', '.join(SUITES)})"
        )
    for s in suites:
        get_suite(s)
    output_dir = overrides.get("output_dir") or recipe.get("output_dir")
    if not output_dir:
        raise ValueError("no output folder: give --output DIR or `output_dir:` in the recipe")
    settings = EvalSettings(
        **{
            k: overrides[k] if overrides.get(k) is not None else recipe[k]
            for k in SETTINGS
            if overrides.get(k) is not None or k in recipe
        }
    )
    suite_options: dict[str, dict[str, Any]] = {}
    for s in suites:
        opts = dict(recipe.get(s) or {})
        fields = {f.name for f in dataclasses.fields(get_suite(s).Options)}
        for flag in SHARED_FLAGS:
            if overrides.get(flag) is not None and flag in fields:
                opts[flag] = overrides[flag]
        suite_options[s] = opts
    return EvalConfig(
        suites=suites,
        output_dir=str(output_dir),
        model=overrides.get("model") or recipe.get("model"),
        model_kind=overrides.get("model_kind") or recipe.get("model_kind"),
        baseline=overrides.get("baseline") or recipe.get("baseline"),
        suite_options=suite_options,
        settings=settings,
    )
