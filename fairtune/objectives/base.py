"""The batch view every fairness objective sees, independent of the task it runs on."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class FairBatch:
    """Per-example quantities of one micro-batch, gathered over all processes where a group statistic needs it.

    A task adapter builds it from the model outputs, so objectives never know which task they run on.

    Args:
        losses: `[N]` per-example task loss (with grad).
        groups: `[N]` long group ids; `-1` marks a row whose group is missing (left out of group objectives).
        num_groups: number of groups in the data (not only in this batch).
        labels: `[N]` long class labels, or None for tasks without a per-example class (QA, NER).
        probs: `[N, C]` predicted class probabilities (with grad), or None.
        representation: `[N, H]` pooled representation (with grad), or None.
    """

    losses: torch.Tensor
    groups: torch.Tensor
    num_groups: int
    labels: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    representation: torch.Tensor | None = None

    @property
    def valid(self) -> torch.Tensor:
        """Mask of rows that have a group."""
        return self.groups >= 0


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
