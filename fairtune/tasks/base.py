"""Task adapters: everything task specific between a dataset row and the fairness objectives.

A FairTrainer never looks at the task: it asks its adapter for the model class, preprocessing, the collator, the
pooling, per-example losses, counterfactual alignments and the task metrics. `TaskAdapter` declares every hook with
a default, so an adapter overrides only what its task needs. Adapters hold configuration (set when they are built),
never state: what evaluation needs besides the predictions (QA's examples and offsets) is passed explicitly as
`references`, as transformers' `run_qa.py` passes its evaluation examples. Adding a task is adding one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from fairtune.columns import FAIRTUNE_KEYS, GROUP_KEY, IS_CF_KEY, PAIR_KEY, WEIGHT_KEY

#: span tasks: per token, the aligned source word of the pair's original (-1: not compared), for CLP
CLP_WORD_KEY = "clp_word"
#: every FairBatch field an adapter can feed; classification adds `labels` and `probs`
SPAN_PROVIDES = ("losses", "groups", "representation", "adversary_logits", "pair_log_probs")


@dataclass
class TaskOutputs:
    """What an adapter extracts from one forward pass.

    Args:
        losses: `[B]` per-example task loss (the sum over the example's items; see `item_counts`).
        item_counts: `[B]` how many loss items each example holds (1 for classification, labelled tokens for NER,
            1 per feature for QA); the task loss is `losses.sum() / global item count`.
        representation: `[B, H]` pooled representation.
        predictions: what evaluation keeps per example, keyed by name (`{"logits": ...}`).
        probs: `[B, C]` class probabilities for classification-like tasks, else None.
        labels: `[B]` class labels, else None.
        extras: task-specific quantities for the objectives (NER: `group_losses`, the per-token mean).
    """

    losses: torch.Tensor
    item_counts: torch.Tensor
    representation: torch.Tensor | None
    predictions: dict[str, torch.Tensor]
    probs: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalContext:
    """What `TaskAdapter.evaluate` gets besides predictions and labels.

    Args:
        group_names: names behind the group ids.
        label_list: class or tag names.
        gap_groups: NER/QA: the groups the `*_gap` metrics compare (None: all).
        nested: also return the nested `per_group` table (reports).
        references: the split's references from `eval_references` (QA: examples and offsets), or None.
        min_group_size: groups with fewer rows are reported with their count but left out of the gaps.
    """

    group_names: Sequence[str] = ()
    label_list: Sequence[str] = ()
    gap_groups: Sequence[str] | None = None
    nested: bool = False
    references: Any = None
    min_group_size: int = 0


class TaskAdapter(Protocol):
    """The hooks a FairTrainer and the pipeline call; each has a default. Subclass it and set `name`,
    `label_names`, `provides` (the FairBatch fields it feeds, which decides the objectives it supports) and
    `has_class_labels`."""

    name: ClassVar[str] = "base"
    #: the task's own label keys in a batch (what `labels` is for classification)
    label_names: ClassVar[tuple[str, ...]] = ("labels",)
    #: FairBatch fields this task feeds the objectives
    provides: ClassVar[tuple[str, ...]] = SPAN_PROVIDES
    #: whether each example has one class label (classification); group-rate objectives need it
    has_class_labels: ClassVar[bool] = False
    #: batch columns the adapter reads that the model does not take (popped before the forward)
    extra_columns: ClassVar[tuple[str, ...]] = ()

    def model_class(self):  # pragma: no cover - interface
        """The `AutoModelFor...` class of the task."""
        raise NotImplementedError

    def resolve_labels(self, encoded, data_args, enc=None) -> list[str]:
        """The label names of the task from the encoded splits (default: the encodings' classes)."""
        return list(getattr(enc, "label_list", None) or [])

    def configured(self, data_args, label_list: Sequence[str]) -> TaskAdapter:
        """The adapter configured for a run's data settings and labels (default: itself)."""
        return self

    def preprocess(self, dataset, tokenizer, data_args, split: str):  # pragma: no cover - interface
        """Tokenize a split; must keep the FAIRTUNE_KEYS columns."""
        raise NotImplementedError

    def eval_references(self, dataset, features) -> tuple[Any, Any]:
        """Split what evaluation needs besides the predictions off the preprocessed features of an evaluation
        split: returns (features for the model, references); by default there are none."""
        return features, None

    def collator(self, tokenizer):  # pragma: no cover - interface
        raise NotImplementedError

    def pop_model_extras(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Remove the adapter's extra columns from the model inputs and return them."""
        return {k: inputs.pop(k) for k in self.extra_columns if k in inputs}

    def pool(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None,
        extras: dict[str, Any] | None = None,
        is_decoder: bool = False,
    ) -> torch.Tensor:
        """Pooled representation: first token for encoders, last non-pad token for decoders."""
        return first_or_last_token(hidden, attention_mask, is_decoder)

    def outputs(
        self, model_outputs, labels: dict[str, torch.Tensor], representation, extras: dict[str, Any]
    ) -> TaskOutputs:  # pragma: no cover - interface
        raise NotImplementedError

    def count_items(self, batch: dict[str, Any]) -> torch.Tensor:  # pragma: no cover - interface
        """Number of task-loss items in a (collated) batch; the task loss divides by its global sum."""
        raise NotImplementedError

    def evaluate(
        self, predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray], context: EvalContext
    ) -> dict[str, Any]:  # pragma: no cover - interface
        """Task metrics and per-group metrics from gathered predictions and label columns, keyed by name."""
        raise NotImplementedError

    def pair_log_probs(self, model_outputs, batch: dict[str, Any], pairs: torch.Tensor):  # pragma: no cover
        """Aligned log-distributions `(a, b, mask)` of each (original, counterfactual) pair for CLP."""
        raise NotImplementedError

    def pair_logits(self, model_outputs, batch: dict[str, Any], pairs: torch.Tensor):  # pragma: no cover
        """The same pairs' aligned raw logits `(a, b, mask)` (adapters that list `pair_logits` in `provides`)."""
        raise NotImplementedError


def first_or_last_token(hidden: torch.Tensor, attention_mask: torch.Tensor | None, is_decoder: bool) -> torch.Tensor:
    """The first token's vector (encoders) or the last non-pad token's (decoders, whichever side they pad)."""
    if is_decoder:
        if attention_mask is None:
            return hidden[:, -1]
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.long() * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return hidden[:, 0]


# ---- shared by the span tasks (NER, QA) ---------------------------------------------------------------------
class TokenExtrasCollator:
    """Pads a task collator's batch plus per-token extra columns (each with its own pad value)."""

    def __init__(self, base, pads: dict[str, int], padding_side: str = "right") -> None:
        """Wrap `base` (a collator padding on `padding_side`); `pads` maps each extra column to its pad value."""
        self.base = base
        self.pads = dict(pads)
        self.padding_side = padding_side

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Collate with the base collator, then pad the extra columns to its sequence length."""
        features = [dict(f) for f in features]
        extras = {k: [f.pop(k) for f in features] for k in self.pads if k in features[0]}
        batch = self.base(features)
        length = batch["input_ids"].shape[1]
        left = self.padding_side == "left"
        for key, values in extras.items():
            out = torch.full((len(values), length), self.pads[key], dtype=torch.long)
            for i, v in enumerate(values):
                v = torch.as_tensor(list(v), dtype=torch.long)[:length]
                if left:
                    out[i, length - len(v) :] = v
                else:
                    out[i, : len(v)] = v
            batch[key] = out
        return batch


def group_metric_table(
    scores: dict[int, dict[str, float]],
    group_names: Sequence[str] | None,
    keys: Sequence[str],
    gap_groups: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Flat `group_{name}_{stat}` entries plus `{stat}_gap` (max - min over the groups, or over `gap_groups` when
    given), and the nested table (always every group)."""
    names = list(group_names or [])
    per_group = {(names[g] if 0 <= g < len(names) else str(g)): s for g, s in sorted(scores.items())}
    flat: dict[str, Any] = {}
    for gname, stats in per_group.items():
        for stat, value in stats.items():
            flat[f"group_{gname}_{stat}"] = value
    compared = {g: v for g, v in per_group.items() if gap_groups is None or g in gap_groups}
    if len(compared) >= 2:
        for key in keys:
            vals = [s[key] for s in compared.values() if s.get("count", 1) > 0]
            if len(vals) >= 2:
                flat[f"{key}_gap"] = float(max(vals) - min(vals))
    return flat, per_group


__all__ = [
    "CLP_WORD_KEY",
    "FAIRTUNE_KEYS",
    "GROUP_KEY",
    "IS_CF_KEY",
    "PAIR_KEY",
    "WEIGHT_KEY",
    "EvalContext",
    "TaskAdapter",
    "TaskOutputs",
    "TokenExtrasCollator",
    "first_or_last_token",
    "group_metric_table",
]
