"""Recipes: flat YAML as defaults, `--field value` flags as overrides, parsed by `transformers.HfArgumentParser`.

`build_parser()` is one HfArgumentParser over `ModelArguments`, `DataArguments` and `FairTrainingArguments`, so
`fairtune train --help` lists every field with its help text. A recipe's values become the parser's defaults and the
flags override them; argparse converts strings to each field's type (YAML 1.1 reads `1e-4` as a string: it becomes a
float here). Unknown keys and flags are errors with a suggestion, a value of the wrong type is an error naming the
field, and nothing the caller passed is modified: derived values are computed into the new dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments

ARG_CLASSES = (ModelArguments, DataArguments, FairTrainingArguments)
#: fields whose recipe value may be a mapping (recipes are otherwise flat)
MAPPING_FIELDS = frozenset({"objectives"})


class RecipeError(ValueError):
    """A recipe or flag value that cannot be parsed: one line naming the field and the fix."""


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def _all_fields() -> dict[str, type]:
    """Every recipe key and the dataclass that owns it; a name in two of them would break the flat namespace."""
    seen: dict[str, type] = {}
    for cls in ARG_CLASSES:
        for name in _field_names(cls):
            if name in seen:
                raise RuntimeError(f"field {name!r} is defined in both {seen[name].__name__} and {cls.__name__}")
            seen[name] = cls
    return seen


def build_parser(prog: str = "fairtune train"):
    """The HfArgumentParser over every recipe field (errors raise `RecipeError` instead of exiting)."""
    from transformers import HfArgumentParser

    class _Parser(HfArgumentParser):
        def error(self, message: str):  # argparse would print usage and exit
            raise RecipeError(_reword(message))

    parser = _Parser(ARG_CLASSES, prog=prog, allow_abbrev=False)
    parser.description = (
        "Train from a flat YAML recipe; `--field value` flags override it. Every key below is a recipe key."
    )
    return parser


def _reword(message: str) -> str:
    """argparse's `argument --lr: invalid float value: 'x'` as `` `lr`: expected a float, got 'x' ``."""
    m = re.match(r"argument (--[\w-]+)(?:/[^:]*)?: invalid (\w+) value: (.*)", message)
    if m:
        name = m.group(1).lstrip("-").replace("-", "_")
        kind = {"float": "a number", "int": "an integer", "string_to_bool": "true or false"}.get(
            m.group(2), m.group(2)
        )
        return f"`{name}`: expected {kind}, got {m.group(3)}."
    m = re.match(r"argument (--[\w-]+)(?:/[^:]*)?: (.*)", message)
    if m:
        return f"`{m.group(1).lstrip('-').replace('-', '_')}`: {m.group(2)}."
    return message


def _type_args(cls, name: str) -> tuple:
    tp = typing.get_type_hints(cls).get(name)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return typing.get_args(tp)
    return (tp,)


def _check_value(cls, name: str, value: Any) -> Any:
    """A typed recipe value (YAML numbers, lists, booleans) checked against its field; strings are left to
    argparse, which converts them."""
    if value is None or isinstance(value, str):
        return value
    args = _type_args(cls, name)
    origins = {typing.get_origin(a) or a for a in args}
    if isinstance(value, bool):
        if bool in origins or not (origins & {int, float}):
            return value
        raise RecipeError(f"`{name}`: expected a number, got {value!r}.")
    if isinstance(value, (int, float)):
        if float in origins:
            if not math.isfinite(float(value)):
                raise RecipeError(f"`{name}`: must be a finite number, got {value}; use a number such as 0.5.")
            return float(value) if int not in origins else value
        if int in origins:
            if float(value).is_integer():
                return int(value)
            raise RecipeError(f"`{name}`: expected an integer, got {value!r}.")
        if str in origins or bool in origins:
            return str(value) if str in origins else value
    if isinstance(value, list) and not origins & {list, str, dict}:
        raise RecipeError(f"`{name}`: expected one value, got the list {value!r}.")
    if isinstance(value, dict) and dict not in origins:
        raise RecipeError(f"`{name}`: expected one value, got the mapping {value!r}; recipes are flat (field: value).")
    return value


def parse_overrides(tokens: list[str]) -> dict[str, Any]:
    """`--a 1 --b=x --flag` into {'a': '1', 'b': 'x', 'flag': 'true'}, untyped: a quick look at the flags (e.g.
    before the arguments can be built); `parse_config` types and checks them."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise RecipeError(f"expected `--field value`, got {tok!r}; recipe fields are passed as `--name value`.")
        key, eq, value = tok[2:].partition("=")
        if not eq:
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
                i += 1
            else:
                value = "true"
        out[key.replace("-", "_")] = value
        i += 1
    return out


def load_recipe(path: str | Path | None) -> dict[str, Any]:
    """Read a flat YAML recipe into a dict (an empty dict when no recipe is given)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {str(path)!r} not found; pass the path of a YAML file (see recipes/).")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"recipe {str(path)!r}{where}: not valid YAML ({getattr(err, 'problem', err)}).") from None
    except UnicodeDecodeError as err:
        raise RecipeError(f"recipe {str(path)!r}: not UTF-8 text (byte {err.start}); save it as UTF-8.") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {str(path)!r} must be a flat mapping of field: value, got {type(data).__name__}.")
    nested = [k for k, v in data.items() if isinstance(v, dict) and k not in MAPPING_FIELDS]
    if nested:
        raise RecipeError(f"recipe {str(path)!r}: keys {nested} hold mappings; recipes are flat (field: value).")
    return data


def _unknown(keys: list[str], known: dict[str, type], what: str) -> RecipeError:
    hints = []
    for key in keys:
        close = difflib.get_close_matches(key, known, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return RecipeError(
        f"unknown {what}: {', '.join(hints)}. Every key must be a fairtune or TrainingArguments field "
        "(`fairtune train --help` lists them)."
    )


def _derived_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """Defaults that depend on the machine: under `accelerate launch` with several processes and no GPU, run on
    CPU with gloo (`use_cpu`); otherwise accelerate would start independent runs on the full data."""
    derived: dict[str, Any] = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "use_cpu" not in values:
        import torch

        if not (torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())):
            derived["use_cpu"] = True
    return derived


def parse_config(
    recipe: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
) -> tuple[ModelArguments, DataArguments, FairTrainingArguments]:
    """Build the three argument dataclasses from a recipe and overrides (a flag list or a dict); unknown keys,
    wrongly typed values and invalid settings raise `ValueError` naming the field."""
    known = _all_fields()
    values = load_recipe(recipe)
    flags: list[str] = []
    if isinstance(overrides, dict):
        values.update(overrides)
    elif overrides:
        flags, nulls = _pop_nulls([str(t) for t in overrides], known)
        values.update(nulls)
    unknown = [k for k in values if k not in known]
    if unknown:
        raise _unknown(unknown, known, "recipe key(s)")
    defaults = {k: _check_value(known[k], k, v) for k, v in values.items()}
    defaults = {**_derived_defaults({**defaults, **_flag_names(flags)}), **defaults}
    parser = build_parser()
    parser.set_defaults(**defaults)
    namespace, rest = parser.parse_known_args(flags)
    if rest:
        names = [t[2:].split("=", 1)[0].replace("-", "_") for t in rest if t.startswith("--")]
        if names:
            raise _unknown(names, known, "recipe key(s) in the flags")
        raise RecipeError(f"expected `--field value`, got {rest[0]!r}; recipe fields are passed as `--name value`.")
    args = vars(namespace)
    for name, value in args.items():  # lists from nargs and YAML: type-check their items too
        if isinstance(value, float) and not math.isfinite(value):
            raise RecipeError(f"`{name}`: must be a finite number, got {value}; use a number such as 0.5.")
    built = []
    for cls in ARG_CLASSES:
        built.append(cls(**{k: args[k] for k in _field_names(cls) if k in args}))
    return tuple(built)  # type: ignore[return-value]


def typed_flags(flags: list[str]) -> dict[str, Any]:
    """Only the fields set by `--field value` flags, converted to their types (list fields split on commas)."""
    import argparse

    from fairtune.config import _split_commas

    known = _all_fields()
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    flags, nulls = _pop_nulls([str(t) for t in flags], known)
    namespace, rest = parser.parse_known_args(flags)
    names = [t[2:].split("=", 1)[0].replace("-", "_") for t in rest if t.startswith("--")]
    if names:
        raise _unknown(names, known, "recipe key(s) in the flags")
    out = {**vars(namespace), **nulls}
    for name, value in out.items():
        if name in known and isinstance(value, list):
            out[name] = _split_commas(value)
    return out


_NULL_FLAGS = ("null", "None", "~")  # what a YAML recipe writes as null


def _pop_nulls(flags: list[str], known: dict[str, type]) -> tuple[list[str], dict[str, None]]:
    """`--field null` (or None, ~) taken out of `flags` as {field: None}, for the fields that may be None: it clears a
    value the recipe sets (`--dataset_name null` trains on local files with a recipe that names a Hub dataset);
    argparse would keep the word, or fail to read it as a number."""
    kept: list[str] = []
    nulls: dict[str, None] = {}
    i = 0
    while i < len(flags):
        tok = flags[i]
        name, eq, value = tok[2:].partition("=") if tok.startswith("--") else ("", "", "")
        name = name.replace("-", "_")
        if not eq and i + 1 < len(flags):
            value = flags[i + 1]
        if name in known and value in _NULL_FLAGS and type(None) in _type_args(known[name], name):
            nulls[name] = None
            i += 1 if eq else 2
            continue
        kept.append(tok)
        i += 1
    return kept, nulls


def _flag_names(flags: list[str]) -> dict[str, bool]:
    """The field names set on the command line (for derived defaults)."""
    return {t[2:].split("=", 1)[0].replace("-", "_"): True for t in flags if t.startswith("--")}


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
