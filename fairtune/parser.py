"""Recipes: flat YAML as defaults, `--field value` flags as overrides, unknown keys as errors."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments

ARG_CLASSES = (ModelArguments, DataArguments, FairTrainingArguments)


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def _check_no_conflicts() -> None:
    """fairtune keys must not shadow each other across the dataclasses (one flat namespace)."""
    seen: dict[str, str] = {}
    for cls in ARG_CLASSES:
        for name in _field_names(cls):
            if name in seen:
                raise RuntimeError(f"field {name!r} is defined in both {seen[name]} and {cls.__name__}")
            seen[name] = cls.__name__


def _type_args(cls, name: str) -> tuple:
    tp = typing.get_type_hints(cls).get(name)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return typing.get_args(tp)
    return (tp,)


def parse_overrides(tokens: list[str]) -> dict[str, Any]:
    """`--a 1 --b=x --flag` into {'a': 1, 'b': 'x', 'flag': True}; values are read as YAML scalars or lists."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise ValueError(f"expected `--field value`, got {tok!r}; recipe fields are passed as `--name value`.")
        key, eq, value = tok[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
                i += 1
            else:
                value = "true"
        out[key] = value
        i += 1
    return out


def _coerce(cls, name: str, value: str) -> Any:
    """Type a command-line string by its field: strings stay strings (`no` is not False), lists split on commas."""
    args = _type_args(cls, name)
    allows_list = any(typing.get_origin(a) is list or a is list for a in args)
    if allows_list and "," in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    if str in args:
        return None if value in ("None", "null") and type(None) in args else value
    loaded = yaml.safe_load(value)  # `1e-3` stays a string here (YAML 1.1); parse_config makes float fields floats
    return [loaded] if allows_list and not isinstance(loaded, list) and loaded is not None else loaded


def load_recipe(path: str | Path | None) -> dict[str, Any]:
    """Read a flat YAML recipe into a dict (an empty dict when no recipe is given)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {str(path)!r} not found; pass the path of a YAML file (see recipes/).")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"recipe {str(path)!r} must be a flat mapping of field: value, got {type(data).__name__}.")
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        raise ValueError(f"recipe {str(path)!r}: keys {nested} hold mappings; recipes are flat (field: value).")
    return data


def parse_config(
    recipe: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> tuple[ModelArguments, DataArguments, FairTrainingArguments]:
    """Build the three argument dataclasses from a recipe and overrides; unknown keys raise with suggestions."""
    _check_no_conflicts()
    values = load_recipe(recipe)
    extra = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    if isinstance(overrides, list):
        all_names_ = {n: cls for cls in ARG_CLASSES for n in _field_names(cls)}
        extra = {k: (_coerce(all_names_[k], k, v) if k in all_names_ else v) for k, v in extra.items()}
    values.update(extra)
    known: dict[type, dict[str, Any]] = {cls: {} for cls in ARG_CLASSES}
    all_names = {n: cls for cls in ARG_CLASSES for n in _field_names(cls)}
    unknown = []
    for key, value in values.items():
        cls = all_names.get(key)
        if cls is None:
            unknown.append(key)
            continue
        if isinstance(value, str) and float in _type_args(cls, key):
            try:  # YAML 1.1 reads `1e-4` (no dot) as a string
                value = float(value)
            except ValueError:
                pass
        known[cls][key] = value
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, all_names, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"unknown recipe key(s): {', '.join(hints)}. Every key must be a fairtune or TrainingArguments field."
        )
    return tuple(cls(**known[cls]) for cls in ARG_CLASSES)  # type: ignore[return-value]


def config_to_dict(*args_objs) -> dict[str, Any]:
    """Flatten argument dataclasses into a JSON-safe dict; never includes the Hub token."""
    out: dict[str, Any] = {}
    for obj in args_objs:
        d = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
        out.update(d)
    for secret in ("hub_token", "push_to_hub_token"):
        out.pop(secret, None)
    return {
        k: (v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else str(v)) for k, v in out.items()
    }
