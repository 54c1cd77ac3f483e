"""Group x label balance weights: every (label, group) cell of the training data counts equally.

One formula, n / (cells * n_cell), used by `group_balance: reweight`/`resample` (per row) and by
`adversary_balance` (a table the adversary indexes per batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def cell_balance_weights(groups: torch.Tensor, labels: torch.Tensor | None, num_groups: int) -> torch.Tensor:
    """`_cell_table` in float32 (what the adversary multiplies its losses by)."""
    return _cell_table(groups, labels, num_groups).float()


def _cell_table(groups: torch.Tensor, labels: torch.Tensor | None, num_groups: int) -> torch.Tensor:
    """A `[num_labels, num_groups]` table of weights n / (cells * n_cell) from (label, group) counts (one label
    slot without labels): every non-empty cell then weighs the same; ungrouped or unlabelled rows are not counted.
    On skewed data an adversary must then beat balanced chance, not the majority group."""
    groups = torch.as_tensor(groups).long()
    labels = torch.zeros_like(groups) if labels is None else torch.as_tensor(labels).long()
    keep = (groups >= 0) & (labels >= 0)
    num_labels = int(labels[keep].max()) + 1 if keep.any() else 1
    counts = torch.zeros(num_labels, max(num_groups, 1), dtype=torch.float64)
    counts.index_put_((labels[keep], groups[keep]), torch.ones(int(keep.sum()), dtype=torch.float64), accumulate=True)
    cells = int((counts > 0).sum())
    table = torch.where(counts > 0, counts.sum() / (cells * counts.clamp(min=1)), torch.zeros_like(counts))
    return table


def row_balance_weights(groups: Sequence[int], labels: Sequence[int] | None) -> list[float]:
    """Each row's weight from `cell_balance_weights`; rows without a group (or label) get 1."""
    g = torch.as_tensor(list(groups), dtype=torch.long)
    y = torch.as_tensor(list(labels), dtype=torch.long) if labels is not None else torch.zeros_like(g)
    if len(g) == 0:
        return []
    table = _cell_table(g, y, int(g.max()) + 1 if (g >= 0).any() else 1)
    keep = (g >= 0) & (y >= 0)
    w = torch.ones(len(g), dtype=torch.float64)
    w[keep] = table[y[keep], g[keep]]
    return w.tolist()
