"""Reading a resolved fairtune config: the debiasing it enables and the recipe fields that differ from defaults."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fairtune.cards.base import CONFIG_NAME, META_KEYS, TOKEN_FIELDS, CardError, _as_list, _is_number, _package_version
from fairtune.cards.hub_ids import _display_name


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _cda_enabled(config: Mapping[str, Any]) -> bool:
    value = config.get("cda")
    if isinstance(value, str):
        return value.strip().lower() not in {"", "none", "off", "false", "no", "0"}
    return bool(value)


def _enabled_methods(config: Mapping[str, Any]) -> list[str]:
    methods = [obj["name"] for obj in _objectives(config)]
    if _cda_enabled(config):
        methods.append("counterfactual data augmentation")
    if _group_balance(config):
        methods.append("group balancing")
    return methods


def _group_balance(config: Mapping[str, Any]) -> str | None:
    value = config.get("group_balance")
    return None if value in (None, False, "", "none", "no", 0) else str(value)


def _objectives(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's objectives as the card describes them, read from the objective registry (each registered class
    carries its name, description, settings and citations; third-party ones come from `objective_modules`)."""
    from types import SimpleNamespace

    from fairtune.objectives import OBJECTIVES, resolve_objectives

    try:
        active = resolve_objectives(SimpleNamespace(**dict(config)))
    except ValueError as err:
        raise CardError(f"the run's objectives cannot be read from {CONFIG_NAME}: {err}") from err
    rows = []
    for name, (weight, _) in active.items():
        cls = OBJECTIVES[name]
        entry = cls.card_entry(dict(config))
        rows.append({"field": cls.weight_field or f"objectives.{name}", "weight": weight, **entry})
    return rows


def _adversary(config: Mapping[str, Any]) -> dict[str, Any] | None:
    if not _positive(config.get("adversary_weight")):
        return None
    keys = [k for k in config if k.startswith("adversary_") or k == "num_adversaries"]
    return {key: config[key] for key in keys if config[key] is not None}


def _cda(config: Mapping[str, Any]) -> dict[str, Any]:
    lexicon_file = config.get("cda_lexicon")
    if config.get("cda_lexicon_version"):
        lexicon = str(config["cda_lexicon_version"])
    elif lexicon_file:
        lexicon = f"user lexicon `{_display_name(lexicon_file)}` (not versioned)"
    else:
        version = config.get("fairtune_version") or _package_version()
        lexicon = f"built-in lexicons of fairtune {version}"
    skip = {"cda_axes", "cda_lexicon", "cda_lexicon_version"}
    settings = {k: v for k, v in config.items() if k.startswith("cda_") and k not in skip and v is not None}
    return {
        "enabled": _cda_enabled(config),
        "mode": config.get("cda"),
        "axes": _as_list(config.get("cda_axes")),
        "lexicon": lexicon,
        "settings": settings,
        "citations": ["lu2020", "zmigrod2019"],
    }


def _field_defaults() -> dict[str, Any]:
    """Declared default of every recipe field (JSON-normalized); never instantiates TrainingArguments."""
    # Instantiating TrainingArguments resets the global accelerator state: fatal inside a running trainer.
    import dataclasses

    from transformers import TrainingArguments

    classes: list[type] = []
    try:
        from fairtune import config as fairtune_config

        names = ("ModelArguments", "DataArguments", "FairTrainingArguments")
        classes = [getattr(fairtune_config, name) for name in names if hasattr(fairtune_config, name)]
    except ImportError:  # the config module is not needed to render a card
        classes = []
    defaults: dict[str, Any] = {}
    for cls in [TrainingArguments, *classes]:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = _normalized(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = _normalized(f.default_factory())
    return defaults


def _is_unset(value: Any) -> bool:
    """None, False, empty, or `none` (0 is a value: `mindiff_label: 0` means label 0)."""
    return value is None or value is False or value in ("", "none", [], {}, ["none"])


#: fields that TrainingArguments.__post_init__ fills in from others; not part of a recipe unless set explicitly
_DERIVED_FIELDS = frozenset({"logging_dir", "accelerator_config", "local_rank"})


def _differs(value: Any, default: Any) -> bool:
    value = _normalized(value)
    if value == default:
        return False
    return not (_is_unset(default) and _is_unset(value))  # an unset field that __post_init__ resolved


def _normalized(value: Any) -> Any:
    """A value as it reads back from JSON (enums as their value, tuples as lists)."""
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "value", str(v))))


def recipe_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config's fields that differ from their defaults: the recipe a user would write (paths shortened)."""
    defaults = _field_defaults()
    recipe = {}
    for key, value in config.items():
        if key.startswith("_") or key in META_KEYS or key in TOKEN_FIELDS or key in _DERIVED_FIELDS:
            continue
        if key in defaults:
            if not _differs(value, defaults[key]):
                continue
        elif _is_unset(value):  # a field whose default is unknown: leave out unset values
            continue
        recipe[key] = _publishable(value)
    return recipe


def _publishable(value: Any) -> Any:
    """A recipe value for the card: absolute local paths shortened to `<local>/name` (they mean nothing elsewhere)."""
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return f"<local>/{Path(value).name}"
    if isinstance(value, list):
        return [_publishable(v) for v in value]
    return value
