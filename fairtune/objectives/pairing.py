"""Counterfactual logit pairing losses (Garg et al. 2019) with model-remediation's conventions (pure functions).

Each takes the original and counterfactual outputs `[P, ..., K]` of P pairs and returns one scalar:

- `kl`:     symmetric KL between the softmax distributions, averaged over pairs (fairtune's CLP so far; the
            inputs are log-probabilities).
- `l2`:     model-remediation's `PairwiseMSELoss`: mean over the last axis of (a - b)^2 per pair.
- `l1`:     `PairwiseAbsoluteDifferenceLoss`: mean over the last axis of |a - b| per pair.
- `cosine`: `PairwiseCosineLoss`: minus the cosine similarity over the last axis (keras `CosineSimilarity`,
            l2-normalised with epsilon 1e-12), so identical outputs give -1.

model-remediation then reduces with `tf.nn.compute_average_loss`: sum over pairs of loss x sample_weight divided by
the number of pairs (`global_batch_size`, default the batch). `sample_weight` is a scalar or one weight per pair.
"""

from __future__ import annotations

import torch

PAIR_LOSSES = ("kl", "l2", "l1", "cosine")


def _per_pair(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "kl":
        pa, pb = a.exp(), b.exp()
        return 0.5 * ((pa * (a - b)).sum(-1) + (pb * (b - a)).sum(-1))
    if kind == "l2":
        return (a - b).pow(2).mean(-1)
    if kind == "l1":
        return (a - b).abs().mean(-1)
    if kind == "cosine":
        na = a / a.pow(2).sum(-1, keepdim=True).clamp(min=1e-12).sqrt()
        nb = b / b.pow(2).sum(-1, keepdim=True).clamp(min=1e-12).sqrt()
        return -(na * nb).sum(-1)
    raise ValueError(f"pair loss must be one of {PAIR_LOSSES}, got {kind!r}")


def pair_loss(
    original: torch.Tensor,
    counterfactual: torch.Tensor,
    kind: str = "kl",
    *,
    sample_weight: torch.Tensor | float | None = None,
    mask: torch.Tensor | None = None,
    global_batch_size: int | None = None,
) -> torch.Tensor:
    """Pair loss of `kind` between `original` and `counterfactual` `[P, ..., K]`, reduced as model-remediation does.

    Token and span tasks pass `[P, L, K]` with `mask` `[P, L]` marking aligned positions: each pair's loss is then
    the mean over its aligned positions. No pairs give an exact 0 connected to the graph.
    """
    if original.shape != counterfactual.shape:
        raise ValueError(
            f"original and counterfactual must have the same shape, got {tuple(original.shape)} and "
            f"{tuple(counterfactual.shape)}"
        )
    per = _per_pair(original.float(), counterfactual.float(), kind)
    if per.dim() > 1:
        m = torch.ones_like(per, dtype=torch.bool) if mask is None else mask.to(torch.bool)
        mf = m.to(per.dtype)
        per = (per * mf).flatten(1).sum(1) / mf.flatten(1).sum(1).clamp(min=1)
    if per.numel() == 0:
        return original.sum() * 0.0
    if sample_weight is not None:
        w = torch.as_tensor(sample_weight, dtype=per.dtype, device=per.device)
        if w.dim() > 0:
            w = w.reshape(-1)
            if len(w) != len(per):
                raise ValueError(f"sample_weight must be a scalar or one weight per pair ({len(per)}), got {len(w)}")
        per = per * w
    return per.sum() / (global_batch_size or len(per))
