"""The objective protocol, the batch view every objective sees, and the registry that names them.

An objective is one small class: it declares the fields of the `FairBatch` it reads (`needs`), computes a scalar
and the numbers it logs, and carries its own model-card text and citations. `@register_objective("name")` makes it
a recipe key (`objectives: {name: weight}`); the built-in ones also answer to their historic `<name>_weight` keys.
A user's module listed in `objective_modules` registers its own the same way, with no change inside fairtune.

Two kinds, told apart by `gathered`:
- gathered (group statistics: DP, EO, MinDiff, group DRO, loss parity): computed on the micro-batch gathered over
  all processes (with gradients); the trainer averages them over accumulation steps.
- local (sums over items: CLP, the adversary): computed on this process's rows, as a sum that the objective scales
  with `batch.scale` (world size / global item count of the accumulation window, counted by `count_items`), so the
  result equals one big batch whatever the number of processes or accumulation steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

#: every field of `FairBatch` an objective may declare in `needs`
BATCH_FIELDS = (
    "losses",
    "groups",
    "labels",
    "probs",
    "representation",
    "adversary_logits",
    "pair_log_probs",
    "pair_logits",
)


@dataclass
class FairBatch:
    """Per-example quantities of one micro-batch (gathered over all processes for gathered objectives).

    A task adapter builds it from the model outputs, so objectives never know which task they run on.

    Args:
        losses: `[N]` per-example task loss (with grad).
        groups: `[N]` long group ids; `-1` marks a row whose group is missing (left out of group objectives).
        num_groups: number of groups in the data (not only in this batch).
        labels: `[N]` long class labels, or None for tasks without a per-example class (QA, NER).
        probs: `[N, C]` predicted class probabilities (with grad), or None.
        representation: `[N, H]` pooled representation (with grad), or None.
        adversary_logits: `[M, K, N, L, G]` logits of the adversary (see `Adversary`), or None.
        pair_log_probs: `(a, b, mask)` aligned log-distributions of the (original, counterfactual) pairs whose two
            rows are both in this batch, or None.
        pair_logits: the same pairs' aligned raw logits (classification, NER), for the model-remediation pair
            losses that compare logits (l2, l1, cosine), or None.
        num_pairs: number of such pairs.
        row_weights: `[N]` weights of the adversary's rows (`adversary_balance`), or None.
        training: whether this is a training step (stateful objectives update only then).
        scale: local objectives: world size / the global item count of the accumulation window.
        accumulation_steps: micro-batches in the accumulation window (per-step terms divide by it).
    """

    losses: torch.Tensor
    groups: torch.Tensor
    num_groups: int
    labels: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    representation: torch.Tensor | None = None
    adversary_logits: torch.Tensor | None = None
    pair_log_probs: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
    pair_logits: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
    num_pairs: int = 0
    row_weights: torch.Tensor | None = None
    training: bool = True
    scale: torch.Tensor | float = 1.0
    accumulation_steps: int = 1

    @property
    def valid(self) -> torch.Tensor:
        """Mask of rows that have a group."""
        return self.groups >= 0


class Ratio:
    """A logged value as (sum, count) over this process's rows: the trainer sums both over processes in one
    all-reduce before it divides, so local objectives log exact global means. `den=None` logs the global sum;
    with a zero count the value is `empty` (or not logged when `empty` is None)."""

    __slots__ = ("den", "empty", "num")

    def __init__(
        self, num: torch.Tensor | float, den: torch.Tensor | float | None = None, empty: float | None = None
    ) -> None:
        self.num, self.den, self.empty = num, den, empty


class Objective:
    """Base class of a fairness objective added to the task loss.

    Subclasses set `needs` (the `FairBatch` fields they read) and implement `__call__`, which returns the term and
    a dict of logged numbers (floats, or `Ratio`s for local objectives). Options come from the recipe
    (`objectives: {name: {weight: 1.0, option: value}}`) or, for the built-in objectives, from their
    `FairTrainingArguments` fields; `__init__` receives them as keyword arguments next to the run's context.

    Class attributes:
        name: the recipe key (set by `register_objective`).
        needs: `FairBatch` fields read; the trainer refuses the objective on a task whose adapter lacks one.
        gathered: True for group statistics over the gathered micro-batch, False for local sums (see module doc).
        needs_groups: whether it needs at least two groups in the data.
        weight_field: the historic `FairTrainingArguments` weight key (`eo_weight`), or None.
        option_fields: `FairTrainingArguments` fields passed to `__init__` as options (`mindiff_kernel`).
        card_fields: the settings the model card lists (default: `option_fields`).
        card_name, card_text, tag, citations: what the model card says (citation keys of model_cards/citations).
        references: citation entries (`{key: {short, reference, bibtex}}`) for keys the built-in table lacks.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ("losses", "groups")
    gathered: ClassVar[bool] = True
    needs_groups: ClassVar[bool] = True
    weight_field: ClassVar[str | None] = None
    option_fields: ClassVar[tuple[str, ...]] = ()
    card_fields: ClassVar[tuple[str, ...] | None] = None
    card_name: ClassVar[str] = ""
    card_text: ClassVar[str] = ""
    tag: ClassVar[str | None] = None
    citations: ClassVar[tuple[str, ...]] = ()
    references: ClassVar[dict[str, dict[str, str]]] = {}

    def __init__(self, *, num_groups: int = 0, group_names: tuple[str, ...] = (), **options: Any) -> None:
        """Keep the run's groups; subclasses read their own options from `options`."""
        if options:
            raise ValueError(
                f"objective {self.name!r}: unknown option(s) {sorted(options)}; it takes none besides `weight`."
            )
        self.num_groups = num_groups
        self.group_names = tuple(group_names)

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError

    def combine(self, value: torch.Tensor, weight: float) -> torch.Tensor:
        """The term added to the loss: `weight * value` (the adversary applies its weight inside the model)."""
        return weight * value

    def count_items(self, batch: dict[str, Any]) -> int:
        """Local objectives: the items of a collated batch that `batch.scale` normalises by."""
        return 0

    @classmethod
    def needs_for(cls, options: dict[str, Any]) -> tuple[str, ...]:
        """The batch fields read with these options (an option can change them, e.g. CLP on logits)."""
        return cls.needs

    def state_dict(self) -> dict[str, Any] | None:
        """State to keep in checkpoints (`fairtune_state.json`), or None when stateless."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    @classmethod
    def card_settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Settings the model card lists next to the weight (the option fields that are set)."""
        keys = cls.option_fields if cls.card_fields is None else cls.card_fields
        return {key: config[key] for key in keys if config.get(key) is not None}

    @classmethod
    def card_entry(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Name, description, settings and citations for the model card, given the saved run config."""
        return {
            "name": cls.card_name or cls.name,
            "description": cls.card_text or (cls.__doc__ or "").strip().splitlines()[0],
            "settings": cls.card_settings(config),
            "citations": list(cls.citations),
            "tag": cls.tag,
            "references": dict(cls.references),
        }


#: name -> objective class, in registration order
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator: make `cls` the objective of recipe key `name` (`objectives: {name: weight}`)."""

    def wrap(cls: type[Objective]) -> type[Objective]:
        if not (isinstance(cls, type) and issubclass(cls, Objective)):
            raise TypeError(f"@register_objective({name!r}) decorates Objective subclasses, got {cls!r}.")
        unknown = [f for f in cls.needs if f not in BATCH_FIELDS]
        if unknown:
            raise ValueError(f"objective {name!r}: `needs` names unknown batch fields {unknown}; use {BATCH_FIELDS}.")
        existing = OBJECTIVES.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"objective {name!r} is already registered by {existing.__module__}.{existing.__name__}.")
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return wrap


#: the order built-in objectives are listed (cards) and added to the loss; third-party ones follow
BUILTIN_ORDER = ("dp", "eo", "mindiff", "group_dro", "loss_parity", "clp", "adversary")


def canonical_order(names) -> list[str]:
    """`names` in the canonical order: built-ins as `BUILTIN_ORDER`, then third-party ones as registered."""
    registered = list(OBJECTIVES)

    def key(name: str) -> tuple[int, int]:
        if name in BUILTIN_ORDER:
            return (0, BUILTIN_ORDER.index(name))
        return (1, registered.index(name) if name in registered else len(registered))

    return sorted(names, key=key)


def get_objective(name: str) -> type[Objective]:
    """The registered objective class for a recipe key; an unknown name is an error with a suggestion."""
    load_builtin_objectives()
    if name not in OBJECTIVES:
        import difflib

        close = difflib.get_close_matches(name, OBJECTIVES, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"`objectives`: unknown objective {name!r}{hint}; registered: {', '.join(canonical_order(OBJECTIVES))}. "
            "A third-party "
            "objective is registered by importing its module: list it in `objective_modules`."
        )
    return OBJECTIVES[name]


def load_builtin_objectives() -> None:
    """Import the modules that register fairtune's own objectives."""
    import fairtune.objectives.adversarial  # noqa: F401
    import fairtune.objectives.counterfactual  # noqa: F401
    import fairtune.objectives.group  # noqa: F401


def import_objective_modules(modules: list[str] | tuple[str, ...] | None) -> None:
    """Import the user's modules named in `objective_modules` (each registers its objectives when imported)."""
    import importlib

    for module in modules or ():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(
                f"`objective_modules`: cannot import {module!r} ({err}); give an importable module path (the "
                "module must be on PYTHONPATH, e.g. installed or next to where you run fairtune)."
            ) from err


def zero_like_graph(*tensors: torch.Tensor | None) -> torch.Tensor:
    """A zero that is still connected to the autograd graph, so DDP sees every parameter used every step."""
    total = None
    for t in tensors:
        if t is not None:
            z = t.sum() * 0.0
            total = z if total is None else total + z
    if total is None:
        return torch.zeros(())
    return total


__all__ = [
    "BATCH_FIELDS",
    "OBJECTIVES",
    "FairBatch",
    "Objective",
    "Ratio",
    "get_objective",
    "import_objective_modules",
    "load_builtin_objectives",
    "register_objective",
    "zero_like_graph",
]
