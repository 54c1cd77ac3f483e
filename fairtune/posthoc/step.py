"""The post-hoc erasure step that `fairtune erase` and the training pipeline (`erasure: leace`) run.

`erase_model` fits the eraser on the training data, optionally retrains the head on erased features, folds the
eraser into the head and returns a new model (the caller's is untouched). `erasure_report` measures what it did
on held-out data: a fresh logistic-regression probe's cross-validated accuracy at predicting the group from the
representation before and after (with its majority baseline), and task accuracy before and after.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from fairtune.posthoc.erasure import (
    FOLDABLE,
    ErasureFit,
    HeadSite,
    _forward,
    apply_eraser,
    collect_head_inputs,
    find_head_layer,
    fit_eraser,
    fold_eraser,
)


def erase_model(
    model: nn.Module,
    batches: Iterable[dict[str, Any]],
    num_groups: int,
    *,
    method: str = "leace",
    refit_head: bool = False,
    refit_epochs: int = 3,
    refit_lr: float = 1e-3,
    seed: int = 0,
    accelerator: Any = None,
) -> tuple[nn.Module, ErasureFit, dict[str, Any]]:
    """Erase the group from `model`'s head input and fold the eraser into the head.

    Args:
        model: a trained sequence classifier, token classifier or QA model (not modified).
        batches: model inputs + `group` ids (+ `labels` for `refit_head`); re-iterable (a list or DataLoader)
            when `refit_head` is set, since it is read twice.
        num_groups: number of group ids.
        method: `leace` or `orth` (`quadratic` cannot be folded; `fit_eraser` supports it for analysis).
        refit_head: retrain the head layer on erased features for `refit_epochs` before folding.
        accelerator: merges statistics (and refit features) across processes under `accelerate launch`.

    Returns:
        (erased model, the fit, a dict of what was done: method, site, rows, group counts, seconds).
    """
    if method not in FOLDABLE:
        raise ValueError(
            f"erasure_method {method!r} cannot be folded into the model: use one of {FOLDABLE} (quadratic erasure "
            "needs every input's group at inference; fit_eraser(method='quadratic') applies it to cached features)"
        )
    start = time.perf_counter()
    fit = fit_eraser(model, batches, num_groups, method=method, accelerator=accelerator)
    fit_seconds = time.perf_counter() - start
    out = copy.deepcopy(model)
    info: dict[str, Any] = {
        "method": method,
        "head_layer": fit.site.name,
        "task": fit.site.task,
        "fit_rows": fit.rows,
        "group_counts": fit.group_counts,
        "eraser_rank": int(fit.eraser.proj_left.shape[1]),
        "fit_seconds": fit_seconds,
    }
    if refit_head:
        from fairtune.posthoc.refit import check_refittable, refit_head_layer

        check_refittable(out, fit)
        cached = collect_head_inputs(model, batches, fit.site)
        if accelerator is not None and getattr(accelerator, "num_processes", 1) > 1:
            cached = _gather_cached(cached, accelerator)
        info.update(refit_head_layer(out, fit, cached, epochs=refit_epochs, lr=refit_lr, seed=seed))
    fold_eraser(out, fit, inplace=True)
    info["seconds"] = time.perf_counter() - start
    return out, fit, info


def _gather_cached(cached: Any, accelerator: Any) -> Any:
    """Every process's cached head inputs (so the refit head is the same on all processes)."""
    from accelerate.utils import gather_object

    from fairtune.posthoc.erasure import HeadInputs

    parts = gather_object([cached])
    return HeadInputs(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("x", "groups", "example", "labels")))


def _predictions(model: nn.Module, batches: Iterable[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true labels over `batches` (sequence: one per example; token: labelled tokens)."""
    preds, labels = [], []
    model.eval()
    with torch.no_grad():
        for batch in batches:
            if "labels" not in batch:
                continue
            logits = _forward(model, batch).logits.argmax(-1).cpu()
            y = torch.as_tensor(batch["labels"]).cpu()
            keep = y != -100
            preds.append(logits[keep].numpy())
            labels.append(y[keep].numpy())
    if not preds:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(preds), np.concatenate(labels)


def erasure_report(
    before: nn.Module,
    after: nn.Module,
    fit: ErasureFit,
    eval_batches: Iterable[dict[str, Any]],
    *,
    seed: int = 0,
    max_probe_rows: int = 20000,
    fit_batches: Iterable[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Held-out leakage probe and task accuracy before and after erasure (`eval_batches` is read three times).

    `leakage_probe_*`: a probe cross-validated on the held-out rows themselves (strict: it also finds group signal
    the eraser never saw, from a shift between fitting and held-out data). With `fit_batches` (the rows the eraser
    was fitted on), `transfer_probe_*`: a probe trained on those rows and scored on the held-out ones, the protocol
    of the INLP/RLACE/LEACE papers and what the eraser guarantees.
    """
    from fairtune.objectives.adversarial import leakage_probe, transfer_probe

    site: HeadSite = fit.site or find_head_layer(before)
    rng = np.random.default_rng(seed)

    def sample(batches: Iterable[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        cached = collect_head_inputs(before, batches, site)
        keep = np.flatnonzero(cached.groups >= 0)
        if len(keep) > max_probe_rows:  # token tasks: many rows per example
            keep = np.sort(rng.choice(keep, max_probe_rows, replace=False))
        return cached.x[keep], cached.groups[keep]

    x, g = sample(eval_batches)
    erased = apply_eraser(fit, x) if fit.method != "quadratic" else None
    report: dict[str, Any] = {"probe_rows": int(len(g))}
    fitted = sample(fit_batches) if fit_batches is not None and erased is not None else None
    for name, feats in (("before", x), ("after", erased)):
        if feats is None:
            continue
        probe = leakage_probe(feats, g, seed=seed)
        report[f"leakage_probe_{name}"] = probe["leakage_probe_accuracy"]
        report["leakage_probe_majority_baseline"] = probe["leakage_probe_majority_baseline"]
        if fitted is not None:
            fx = fitted[0] if name == "before" else apply_eraser(fit, fitted[0])
            report[f"transfer_probe_{name}"] = transfer_probe(fx, fitted[1], feats, g, seed=seed)[
                "transfer_probe_accuracy"
            ]
    for name, model in (("before", before), ("after", after)):
        pred, y = _predictions(model, eval_batches)
        if len(y):
            report[f"accuracy_{name}"] = float((pred == y).mean())
    return report
