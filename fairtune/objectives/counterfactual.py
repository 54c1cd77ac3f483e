"""Counterfactual logit pairing (Garg et al. 2019): an example and its counterfactual should score alike."""

from __future__ import annotations

from typing import Any

import torch

from fairtune.columns import IS_CF_KEY, PAIR_KEY
from fairtune.objectives.base import FairBatch, Objective, Ratio, register_objective, zero_like_graph
from fairtune.objectives.pairing import PAIR_LOSSES, pair_loss


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
    """Counterfactual logit pairing: an example's and its counterfactual's outputs should agree (Garg et al. 2019).

    `clp_loss` picks the pair loss: `kl` (default: symmetric KL between the predicted distributions, on any task) or
    model-remediation's `l2` (`PairwiseMSELoss`), `l1` (`PairwiseAbsoluteDifferenceLoss`) and `cosine`
    (`PairwiseCosineLoss`) on the raw logits (classification and NER; QA pairs are compared as word-level span
    distributions, so only `kl` applies there). Each pair counts once; the term is the sum over pairs divided by
    the global pair count of the accumulation window (model-remediation divides by the batch's pair count).
    """

    needs = ("pair_log_probs",)
    gathered = False
    needs_groups = False
    weight_field = "clp_weight"
    option_fields = ("clp_loss",)
    card_name = "Counterfactual logit pairing"
    card_text = (
        "penalises differences between the outputs for an example and for its counterfactual (protected terms "
        "swapped)."
    )
    tag = "counterfactual-logit-pairing"
    citations = ("garg2019",)

    def __init__(self, *, clp_loss: str = "kl", **context: Any) -> None:
        super().__init__(**context)
        if clp_loss not in PAIR_LOSSES:
            raise ValueError(f"`clp_loss`: unknown pair loss {clp_loss!r}; choose one of {', '.join(PAIR_LOSSES)}.")
        self.loss = clp_loss

    @classmethod
    def needs_for(cls, options: dict[str, Any]) -> tuple[str, ...]:
        return ("pair_log_probs",) if options.get("clp_loss", "kl") == "kl" else ("pair_logits",)

    @classmethod
    def card_settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The pair loss is listed when it is not the default symmetric KL."""
        return {"clp_loss": config["clp_loss"]} if config.get("clp_loss", "kl") != "kl" else {}

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        pairs = batch.pair_log_probs if self.loss == "kl" else batch.pair_logits
        if pairs is None or batch.num_pairs == 0:
            total = zero_like_graph(batch.losses)
        elif self.loss == "kl":
            total = pair_divergence(*pairs).sum()
        else:  # model-remediation's per-pair loss, summed here; the trainer's scale divides by the pair count
            a, b, mask = pairs
            total = pair_loss(a, b, self.loss, mask=mask, global_batch_size=1)
        pairs = float(batch.num_pairs)
        return total * batch.scale, {"clp": Ratio(total.detach(), pairs, empty=0.0), "clp_pairs": Ratio(pairs)}

    def count_items(self, batch: dict[str, Any]) -> int:
        """Pairs whose two rows are in the batch."""
        if PAIR_KEY not in batch or IS_CF_KEY not in batch:
            return 0
        return len(find_pairs(batch[PAIR_KEY], batch[IS_CF_KEY]))
