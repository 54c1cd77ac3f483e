"""Task adapters: everything task specific between a dataset row and the fairness objectives.

A FairTrainer never looks at the task: it asks its adapter for the model class, preprocessing, the collator,
per-example losses, pooled representations, counterfactual alignments and the task metrics. Adding a task is
adding one adapter module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

# Columns fairtune adds to every preprocessed split; they travel to compute_loss (and compute_metrics) as labels.
GROUP_KEY = "group"
PAIR_KEY = "pair_id"  # >= 0 links an example and its counterfactual (same id), -1 = unpaired
IS_CF_KEY = "is_cf"  # 1 for a counterfactual row, 0 for an original
FAIRTUNE_KEYS = (GROUP_KEY, PAIR_KEY, IS_CF_KEY)


@dataclass
class TaskOutputs:
    """What an adapter extracts from one forward pass.

    Args:
        losses: `[B]` per-example task loss (sum over the example's items divided by nothing; see `item_counts`).
        item_counts: `[B]` how many loss items each example holds (1 for classification, labelled tokens for NER,
            1 per feature for QA); the task loss is `losses.sum() / global item count`.
        probs: `[B, C]` class probabilities for classification-like tasks, else None.
        labels: `[B]` class labels, else None.
        representation: `[B, H]` pooled representation.
        predictions: what evaluation keeps per example (logits), a tensor or tuple of tensors.
    """

    losses: torch.Tensor
    item_counts: torch.Tensor
    representation: torch.Tensor | None
    predictions: Any
    probs: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class TaskAdapter:
    """Base class. Subclasses set `name`, `label_names` and `supported_objectives` and implement the hooks."""

    name: str = "base"
    #: the task's own label keys in a batch (what `labels` is for classification)
    label_names: tuple[str, ...] = ("labels",)
    #: objective weight fields this task supports (others fail at start-up)
    supported_objectives: frozenset[str] = frozenset()
    #: whether each example has one class label (classification); group-rate objectives need it
    has_class_labels: bool = False

    def model_class(self):  # pragma: no cover - interface
        raise NotImplementedError

    def preprocess(self, dataset, tokenizer, data_args, split: str):  # pragma: no cover - interface
        """Tokenize a split; must keep/add the FAIRTUNE_KEYS columns."""
        raise NotImplementedError

    def collator(self, tokenizer):  # pragma: no cover - interface
        raise NotImplementedError

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, is_decoder: bool) -> torch.Tensor:
        """Pooled representation: first token for encoders, last non-pad token for decoders."""
        if is_decoder:
            if attention_mask is None:
                return hidden[:, -1]
            positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            last = (attention_mask.long() * positions).argmax(dim=1)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return hidden[:, 0]

    def outputs(
        self, model_outputs, labels: dict[str, torch.Tensor], representation
    ) -> TaskOutputs:  # pragma: no cover
        raise NotImplementedError

    def count_items(self, batch: dict[str, Any]) -> torch.Tensor:  # pragma: no cover - interface
        """Number of task-loss items in a (collated) batch; the task loss divides by its global sum."""
        raise NotImplementedError

    def evaluate(self, predictions, labels: dict, *, group_names=None, label_list=None, trainer=None, nested=False):
        """Task metrics and per-group metrics from gathered predictions and label columns."""
        raise NotImplementedError  # pragma: no cover - interface

    def pair_log_probs(self, model_outputs, batch: dict[str, Any], pairs: torch.Tensor):  # pragma: no cover
        """Aligned log-distributions `(a, b, mask)` of each (original, counterfactual) pair for CLP."""
        raise NotImplementedError
