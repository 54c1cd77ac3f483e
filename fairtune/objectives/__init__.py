"""Fairness objectives: one registered class each, composed by the FairTrainer.

```python
from fairtune.objectives import Objective, register_objective

@register_objective("my_gap")
class MyGap(Objective):
    \"\"\"One line: what it equalises, and the paper.\"\"\"
    needs = ("probs", "labels", "groups")
    def __call__(self, batch): ...
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairtune.objectives.base import (
    BATCH_FIELDS,
    OBJECTIVES,
    FairBatch,
    Objective,
    Ratio,
    canonical_order,
    get_objective,
    import_objective_modules,
    load_builtin_objectives,
    register_objective,
    zero_like_graph,
)


def objective_weight_fields() -> dict[str, str]:
    """Historic weight keys of the built-in objectives: `eo_weight` -> `eo`."""
    load_builtin_objectives()
    return {cls.weight_field: name for name, cls in OBJECTIVES.items() if cls.weight_field}


def resolve_objectives(args: Any) -> dict[str, tuple[float, dict[str, Any]]]:
    """The objectives a run uses: name -> (weight, options), from `objectives:` and the `*_weight` aliases.

    Imports `objective_modules` first (so third-party names resolve). Options of built-in objectives come from
    their `FairTrainingArguments` fields; a recipe's `objectives: {name: {weight: w, option: v}}` adds or
    overrides them. A name set both ways with different weights is an error.
    """
    import_objective_modules(getattr(args, "objective_modules", None))
    load_builtin_objectives()
    out: dict[str, tuple[float, dict[str, Any]]] = {}
    for field, name in objective_weight_fields().items():
        weight = float(getattr(args, field, 0.0) or 0.0)
        if weight > 0:
            cls = OBJECTIVES[name]
            out[name] = (weight, {f: getattr(args, f) for f in cls.option_fields if hasattr(args, f)})
    spec = getattr(args, "objectives", None) or {}
    if not isinstance(spec, Mapping):
        raise ValueError(f"`objectives`: a mapping of name: weight, got {spec!r}.")
    for name, value in spec.items():
        cls = get_objective(str(name))
        options: dict[str, Any] = {}
        if isinstance(value, Mapping):
            options = {k: v for k, v in value.items() if k != "weight"}
            value = value.get("weight", 1.0)
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"`objectives`: the weight of {name!r} must be a number, got {value!r}.") from None
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"`objectives`: the weight of {name!r} must be finite and >= 0, got {value!r}.")
        if name in out and out[name][0] != weight:
            raise ValueError(
                f"`objectives`: {name!r} has weight {weight} there and {out[name][0]} from `{cls.weight_field}`; "
                "set it in one place."
            )
        base = out.get(name, (weight, {f: getattr(args, f) for f in cls.option_fields if hasattr(args, f)}))[1]
        if weight > 0:
            out[name] = (weight, {**base, **options})
        else:
            out.pop(name, None)
    return {name: out[name] for name in canonical_order(out)}


__all__ = [
    "BATCH_FIELDS",
    "OBJECTIVES",
    "FairBatch",
    "Objective",
    "Ratio",
    "canonical_order",
    "get_objective",
    "import_objective_modules",
    "objective_weight_fields",
    "register_objective",
    "resolve_objectives",
    "zero_like_graph",
]
