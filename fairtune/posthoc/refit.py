"""Head-only retraining on erased features (`erasure_refit_head`), as the INLP and RLACE papers do after erasure.

After erasure the head still carries weights learnt on the full representation; a few epochs of training only
the head layer on the erased cached features recover task accuracy without giving the group back (the erased
features no longer carry it linearly). The trained layer is then folded as usual (W' = W_new (I - L R)), so
the result stays a plain transformers model. Supported where the folded layer produces the logits itself
(BERT / DeBERTa-v2 / decoder classifiers, token classifiers); a multi-layer head (RoBERTa's dense + tanh) or a QA
head is refused with a clear error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fairtune.posthoc.erasure import ErasureFit, HeadInputs, apply_eraser, head_layer


def check_refittable(model: nn.Module, fit: ErasureFit) -> None:
    """ValueError unless the head layer of `fit` maps the representation straight to the logits."""
    layer = head_layer(model, fit.site)
    num_labels = getattr(model.config, "num_labels", None)
    if fit.site.task == "qa" or layer.out_features != num_labels:
        raise ValueError(
            f"erasure_refit_head needs a head whose layer {fit.site.name!r} outputs the logits "
            f"({layer.out_features} outputs vs num_labels={num_labels}, task {fit.site.task}); refit is supported "
            "for BERT-style sequence classifiers and token classifiers. Set erasure_refit_head: false."
        )


def refit_head_layer(
    model: nn.Module,
    fit: ErasureFit,
    cached: HeadInputs,
    *,
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Train the (not yet folded) head layer of `model` in place on erased `cached` features; returns the losses."""
    check_refittable(model, fit)
    keep = cached.labels >= 0
    if not keep.any():
        raise ValueError("erasure_refit_head needs task labels in the fitting data (a `labels` column)")
    layer = head_layer(model, fit.site)
    x = torch.as_tensor(apply_eraser(fit, cached.x[keep]), dtype=layer.weight.dtype, device=layer.weight.device)
    y = torch.as_tensor(cached.labels[keep], dtype=torch.long, device=layer.weight.device)
    params = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    was = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    try:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen).to(x.device)
            total = 0.0
            for s in range(0, len(x), batch_size):
                idx = order[s : s + batch_size]
                loss = nn.functional.cross_entropy(layer(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / len(x))
    finally:
        for p, r in zip(params, was):
            p.requires_grad_(r)
    return {"refit_epochs": epochs, "refit_losses": [float(v) for v in np.round(losses, 6)], "refit_rows": len(x)}
