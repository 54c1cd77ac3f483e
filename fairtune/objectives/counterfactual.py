"""Counterfactual logit pairing (Garg et al. 2019): an example and its counterfactual should score alike."""

from __future__ import annotations

from typing import Any

import torch

from fairtune.columns import IS_CF_KEY, PAIR_KEY
from fairtune.objectives.base import FairBatch, Objective, Ratio, register_objective, zero_like_graph


def find_pairs(pair_id: torch.Tensor, is_cf: torch.Tensor) -> torch.Tensor:
    """`[P, 2]` indices (original, counterfactual) of pairs whose two rows are both in this batch."""
    pairs = []
    originals = {}
    for i, (p, c) in enumerate(zip(pair_id.tolist(), is_cf.tolist())):
        if p >= 0 and not c:
            originals[p] = i
    for i, (p, c) in enumerate(zip(pair_id.tolist(), is_cf.tolist())):
        if p >= 0 and c and p in originals:
            pairs.append((originals[p], i))
    if not pairs:
        return torch.zeros((0, 2), dtype=torch.long, device=pair_id.device)
    return torch.tensor(pairs, dtype=torch.long, device=pair_id.device)


def pair_divergence(logp_a: torch.Tensor, logp_b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair symmetric KL between aligned log-distributions `[P, ..., K]`, averaged over aligned positions.

    Classification compares the class distributions of a pair; token and span tasks compare per-word
    distributions aligned through the augmentation edits (`mask` marks the aligned positions).
    """
    pa, pb = logp_a.exp(), logp_b.exp()
    sym_kl = 0.5 * ((pa * (logp_a - logp_b)).sum(-1) + (pb * (logp_b - logp_a)).sum(-1))
    if sym_kl.dim() == 1:
        return sym_kl
    if mask is None:
        mask = torch.ones_like(sym_kl, dtype=torch.bool)
    m = mask.to(sym_kl.dtype)
    return (sym_kl * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1)


@register_objective("clp")
class CounterfactualLogitPairing(Objective):
    """Counterfactual logit pairing: symmetric KL between an example's and its counterfactual's outputs (Garg et
    al. 2019)."""

    needs = ("pair_log_probs",)
    gathered = False
    needs_groups = False
    weight_field = "clp_weight"
    card_name = "Counterfactual logit pairing"
    card_text = (
        "penalises differences between the outputs for an example and for its counterfactual (protected terms "
        "swapped)."
    )
    tag = "counterfactual-logit-pairing"
    citations = ("garg2019",)

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        if batch.pair_log_probs is None or batch.num_pairs == 0:
            total = zero_like_graph(batch.losses)
        else:
            total = pair_divergence(*batch.pair_log_probs).sum()
        pairs = float(batch.num_pairs)
        return total * batch.scale, {"clp": Ratio(total.detach(), pairs, empty=0.0), "clp_pairs": Ratio(pairs)}

    def count_items(self, batch: dict[str, Any]) -> int:
        """Pairs whose two rows are in the batch."""
        if PAIR_KEY not in batch or IS_CF_KEY not in batch:
            return 0
        return len(find_pairs(batch[PAIR_KEY], batch[IS_CF_KEY]))
