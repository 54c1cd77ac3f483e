"""LEACE concept erasure (Belrose et al. 2023) of the group from the representation that feeds the task head, folded
into the head so the result is a plain transformers model.

The eraser comes from EleutherAI's `concept-erasure` package: `LeaceFitter` streams the mean, covariance and
cross-covariance of (representation, one-hot group) batch by batch (memory is O(d^2), not O(N d)) and its frozen
`LeaceEraser` is the affine map

    r(x) = x - L R (x - mu)          (L = proj_left [d, k], R = proj_right [k, d], mu = the mean of x)

Since the head's first linear layer computes W x + c, the erased head is the same layer with

    W' = W (I - L R)        c' = c + W L R mu

so `save_pretrained` writes an ordinary checkpoint: `AutoModelFor...from_pretrained` loads it and no fairtune code
runs at inference. Where it folds (the layer that reads the representation, found by `find_head_layer`):

| head                                    | layer folded          | representation            |
| BERT, DeBERTa-v2, ALBERT classifiers    | `classifier`          | pooled output ([CLS] + pooler) |
| RoBERTa, XLM-R, ELECTRA (dense + tanh)  | `classifier.dense`    | first-token hidden state  |
| DistilBERT                              | `pre_classifier`      | first-token hidden state  |
| decoder classifiers (Llama, GPT-2, ...) | `score` (no bias: linear eraser x - LRx) | last non-pad token |
| token classification (NER)              | `classifier`          | every labelled token      |
| question answering                      | `qa_outputs`          | every context token       |

`method="orth"` uses the package's orthogonal-projection variant (same affine form, same fold). `quadratic`
(`QuadraticEraser`, optimal transport of each group to a barycenter) needs the group of every input at inference,
so it cannot be folded into a linear layer: `fold_eraser` refuses it, and `quadratic_erase` applies it to cached
features with known groups (for analysis and the benchmark).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

METHODS = ("leace", "orth", "quadratic")
FOLDABLE = ("leace", "orth")
TASKS = ("sequence", "token", "qa")
GROUP_KEY = "group"
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")

# (attribute path, kind of head) in the order they are tried for a sequence classifier
_SEQUENCE_SITES = ("pre_classifier", "classifier.dense", "classifier", "score")


@dataclass(frozen=True)
class HeadSite:
    """Where the representation enters the head: the linear layer's dotted name and how rows are selected."""

    name: str
    task: str  # sequence | token | qa
    in_features: int
    bias: bool = True  # a layer without bias (decoder `score`) gets a non-affine eraser: nothing to absorb the shift


def _get(module: nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _task_of(model: nn.Module) -> str:
    archs = getattr(model.config, "architectures", None) or [type(model).__name__]
    name = type(model).__name__ + " " + " ".join(archs)
    if "TokenClassification" in name:
        return "token"
    if "QuestionAnswering" in name:
        return "qa"
    if "SequenceClassification" in name:
        return "sequence"
    raise ValueError(
        f"erasure supports sequence classification, token classification and question answering models, got "
        f"{type(model).__name__}"
    )


def find_head_layer(model: nn.Module) -> HeadSite:
    """The linear layer that reads the task representation (see the module table); ValueError if there is none."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    task = _task_of(inner)
    paths = {"sequence": _SEQUENCE_SITES, "token": ("classifier",), "qa": ("qa_outputs",)}[task]
    for path in paths:
        layer = _get(inner, path)
        if isinstance(layer, nn.Linear):
            return HeadSite(path, task, layer.in_features, layer.bias is not None)
    raise ValueError(
        f"no linear head layer found on {type(inner).__name__} (looked for {', '.join(paths)}); supported heads "
        "are listed in docs/posthoc.md"
    )


def head_layer(model: nn.Module, site: HeadSite) -> nn.Linear:
    """The `nn.Linear` of `site` on `model` (through a PEFT wrapper)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _get(inner, site.name)


@contextlib.contextmanager
def capture_head_input(model: nn.Module, site: HeadSite | None = None) -> Iterator[list[torch.Tensor]]:
    """Collect the input of the head layer on every forward inside the block (the hook is removed on exit)."""
    site = site or find_head_layer(model)
    seen: list[torch.Tensor] = []
    handle = head_layer(model, site).register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        yield seen
    finally:
        handle.remove()


@contextlib.contextmanager
def erase_head_input(model: nn.Module, eraser: Any, site: HeadSite | None = None) -> Iterator[None]:
    """Run the eraser on the head layer's input inside the block: the reference the folded model must equal."""
    site = site or find_head_layer(model)

    def hook(_m: nn.Module, args: tuple) -> tuple:
        x = args[0]
        return (eraser(x.to(eraser.proj_left.dtype)).to(x.dtype), *args[1:])

    handle = head_layer(model, site).register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _rows(
    x: torch.Tensor, batch: dict[str, Any], site: HeadSite
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The representation rows of a batch, the example each row belongs to, and the token label of each row
    (token tasks with `labels`; None otherwise)."""
    n = len(x)
    examples = torch.arange(n, device=x.device)
    if x.dim() == 2:  # pooled representation: one row per example
        return x, examples, None
    mask = batch.get("attention_mask")
    mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask.to(x.device).bool()
    if site.task == "sequence":  # decoder classifiers read the last non-pad token
        last = (mask.long() * torch.arange(mask.shape[1], device=x.device)).argmax(1)
        return x[examples, last], examples, None
    labels = None
    if site.task == "token" and "labels" in batch:
        labels = torch.as_tensor(batch["labels"], device=x.device)
        mask = mask & (labels != -100)
    example = examples[:, None].expand_as(mask)
    return x[mask], example[mask], (labels[mask] if labels is not None else None)


def _forward(model: nn.Module, batch: dict[str, Any]) -> Any:
    device = next(model.parameters()).device
    inputs = {k: torch.as_tensor(v).to(device) for k, v in batch.items() if k in _MODEL_INPUTS}
    return model(**inputs)


def iter_head_inputs(
    model: nn.Module, batches: Iterable[dict[str, Any]], site: HeadSite | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, dict[str, Any]]]:
    """Per batch: (rows [n, d] float64, group per row, example per row, token label per row or None, the batch),
    with the model in eval mode (its mode is restored afterwards)."""
    site = site or find_head_layer(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), capture_head_input(model, site) as seen:
            for batch in batches:
                seen.clear()
                _forward(model, batch)
                x, example, token_labels = _rows(seen[-1], batch, site)
                groups = torch.as_tensor(batch[GROUP_KEY], device=x.device).reshape(-1)[example]
                yield x.double(), groups, example, token_labels, batch
    finally:
        model.train(was_training)


def _one_hot(groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(groups.long(), num_groups).double()


@dataclass
class ErasureFit:
    """A fitted eraser, where it applies, and how much data it saw."""

    eraser: Any
    site: HeadSite
    method: str
    num_groups: int
    rows: int
    group_counts: list[int] = field(default_factory=list)


def merge_leace_fitters(fitters: list[Any]) -> Any:
    """One `LeaceFitter` whose statistics equal a single fitter's over all the fitters' rows (parallel Welford).

    Used to combine the statistics of every process under `accelerate launch` without moving any features.
    """
    from concept_erasure import LeaceFitter

    first = fitters[0]
    out = LeaceFitter(
        first.x_dim,
        first.z_dim,
        method=first.method,
        affine=first.affine,
        dtype=first.mean_x.dtype,
        device=first.mean_x.device,
    )
    n = sum(f.n for f in fitters)
    out.n = torch.as_tensor(n, device=first.mean_x.device)
    if int(n) == 0:
        return out
    out.mean_x = sum(f.n * f.mean_x for f in fitters) / n
    out.mean_z = sum(f.n * f.mean_z for f in fitters) / n
    out.sigma_xz_ = sum(f.sigma_xz_ + f.n * torch.outer(f.mean_x - out.mean_x, f.mean_z - out.mean_z) for f in fitters)
    if first.sigma_xx_ is not None:
        out.sigma_xx_ = sum(
            f.sigma_xx_ + f.n * torch.outer(f.mean_x - out.mean_x, f.mean_x - out.mean_x) for f in fitters
        )
    return out


def _gather_fitter(fitter: Any, accelerator: Any) -> Any:
    """Every process's fitter statistics, merged (all processes end with the same eraser)."""
    if accelerator is None or getattr(accelerator, "num_processes", 1) <= 1:
        return fitter
    from concept_erasure import LeaceFitter

    def gathered(t: torch.Tensor) -> torch.Tensor:
        return accelerator.gather(t.to(accelerator.device)[None]).cpu()

    parts = {"n": gathered(fitter.n.reshape(())), "mean_x": gathered(fitter.mean_x), "mean_z": gathered(fitter.mean_z)}
    parts["sigma_xz_"] = gathered(fitter.sigma_xz_)
    if fitter.sigma_xx_ is not None:
        parts["sigma_xx_"] = gathered(fitter.sigma_xx_)
    fitters = []
    for i in range(len(parts["n"])):
        f = LeaceFitter(
            fitter.x_dim, fitter.z_dim, method=fitter.method, affine=fitter.affine, dtype=fitter.mean_x.dtype
        )
        for key, value in parts.items():
            setattr(f, key, value[i].to(fitter.mean_x.dtype) if key != "n" else value[i])
        fitters.append(f)
    return merge_leace_fitters(fitters)


def fit_eraser(
    model: nn.Module,
    batches: Iterable[dict[str, Any]],
    num_groups: int,
    *,
    method: str = "leace",
    site: HeadSite | None = None,
    accelerator: Any = None,
) -> ErasureFit:
    """Fit an eraser of the group from the head layer's input, streamed over `batches`.

    Args:
        model: the trained task model (not modified).
        batches: dicts with the model inputs (`input_ids`, `attention_mask`, ...) and `group` (one int id per
            example, -1 = unknown and skipped); token tasks may add `labels` (-100 positions are skipped).
        num_groups: number of group ids (intersectional groups: one id per combined value, see `combine_groups`).
        method: `leace`, `orth` or `quadratic`.
        accelerator: an `accelerate.Accelerator` when `batches` is one process's shard: the statistics of all
            processes are merged so every process gets the same eraser.
    """
    if method not in METHODS:
        raise ValueError(f"erasure method must be one of {METHODS}, got {method!r}")
    if num_groups < 2:
        raise ValueError(f"erasure needs at least two groups, got num_groups={num_groups}")
    from concept_erasure import LeaceFitter, QuadraticFitter

    site = site or find_head_layer(model)
    d = site.in_features
    if method == "quadratic":
        if accelerator is not None and getattr(accelerator, "num_processes", 1) > 1:
            raise ValueError("method 'quadratic' is fitted on one process; use 'leace' or 'orth' under accelerate")
        fitter: Any = QuadraticFitter(d, num_groups, dtype=torch.float64)
    else:
        # without a bias to absorb the mean shift, the eraser is linear (x - LRx): class means still coincide
        fitter = LeaceFitter(d, num_groups, method=method, affine=site.bias, dtype=torch.float64)
    counts = torch.zeros(num_groups, dtype=torch.long)
    for x, groups, *_ in iter_head_inputs(model, batches, site):
        keep = groups >= 0
        if not keep.any():
            continue
        if int(groups[keep].max()) >= num_groups:
            raise ValueError(f"group id {int(groups.max())} is out of range for num_groups={num_groups}")
        x, g = x[keep].cpu(), groups[keep].cpu()
        counts += torch.bincount(g.long(), minlength=num_groups)
        if method == "quadratic":
            fitter.update(x, g.long())
        else:
            fitter.update(x, _one_hot(g, num_groups))
    if method != "quadratic":
        fitter = _gather_fitter(fitter, accelerator)
        total = int(fitter.n)
        if accelerator is not None and getattr(accelerator, "num_processes", 1) > 1:
            counts = accelerator.reduce(counts.to(accelerator.device), reduction="sum").cpu()
    else:
        total = int(counts.sum())
    present = int((counts > 0).sum())
    if total < 2 or present < 2:
        raise ValueError(
            f"erasure needs rows of at least two groups; saw {total} rows with group counts {counts.tolist()}. "
            "Check the group column."
        )
    return ErasureFit(fitter.eraser, site, method, num_groups, total, counts.tolist())


def fold_eraser(model: nn.Module, fit: ErasureFit, *, inplace: bool = False) -> nn.Module:
    """The model with the affine eraser folded into its head layer (a copy unless `inplace`)."""
    if fit.method not in FOLDABLE:
        raise ValueError(
            f"method {fit.method!r} cannot be folded into a linear layer: it transports each group with its own map "
            "and needs every input's group at inference. Use method 'leace' or 'orth' for a plain model, or "
            "quadratic_erase() on cached features with known groups."
        )
    out = model if inplace else copy.deepcopy(model)
    layer = head_layer(out, fit.site)
    er = fit.eraser
    with torch.no_grad():
        w = layer.weight.double()
        m = er.proj_left.double().to(w.device) @ er.proj_right.double().to(w.device)  # [d, d]
        new_w = w - w @ m
        shift = (
            w @ (m @ er.bias.double().to(w.device)) if er.bias is not None else torch.zeros(len(w), device=w.device)
        )
        if layer.bias is None:
            if float(shift.abs().max()) > 0:
                raise ValueError(
                    f"head layer {fit.site.name} has no bias, so the eraser's mean shift cannot be folded; fit with "
                    "affine=False or use a head with a bias"
                )
        else:
            layer.bias.copy_((layer.bias.double() + shift).to(layer.bias.dtype))
        layer.weight.copy_(new_w.to(layer.weight.dtype))
    return out


def apply_eraser(fit: ErasureFit, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Erased copies of cached rows `x` `[N, d]` (LEACE / orth)."""
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    return fit.eraser(t).numpy()


def quadratic_erase(fit: ErasureFit, x: torch.Tensor | np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Quadratic erasure of cached rows with their (known) group ids."""
    if fit.method != "quadratic":
        raise ValueError("quadratic_erase needs a fit with method='quadratic'")
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    return fit.eraser(t, torch.as_tensor(np.asarray(groups)).long()).numpy()


@dataclass
class HeadInputs:
    """Cached head-layer inputs: rows `x` [N, d], `groups` per row, `example` index per row (into the batches'
    concatenated examples) and the task label per row (`labels`, -100 where unknown)."""

    x: np.ndarray
    groups: np.ndarray
    example: np.ndarray
    labels: np.ndarray


def collect_head_inputs(
    model: nn.Module, batches: Iterable[dict[str, Any]], site: HeadSite | None = None
) -> HeadInputs:
    """Cache the head layer's inputs over `batches` (for probes and head refitting; O(N d) memory)."""
    site = site or find_head_layer(model)
    xs, gs, ex, ys, offset = [], [], [], [], 0
    for x, g, example, token_labels, batch in iter_head_inputs(model, batches, site):
        xs.append(x.cpu().numpy())
        gs.append(g.cpu().numpy())
        ex.append(example.cpu().numpy() + offset)
        if token_labels is not None:
            ys.append(token_labels.cpu().numpy())
        elif "labels" in batch and torch.as_tensor(batch["labels"]).dim() == 1:
            ys.append(torch.as_tensor(batch["labels"]).cpu().numpy()[example.cpu().numpy()])
        else:
            ys.append(np.full(len(x), -100))
        offset += len(torch.as_tensor(batch[GROUP_KEY]).reshape(-1))
    if not xs:
        empty = np.zeros(0, dtype=int)
        return HeadInputs(np.zeros((0, site.in_features)), empty, empty, empty)
    return HeadInputs(np.concatenate(xs), np.concatenate(gs), np.concatenate(ex), np.concatenate(ys))


def text_batches(
    tokenizer: Any,
    texts: list[str],
    groups: list[int] | np.ndarray,
    *,
    labels: list[int] | np.ndarray | None = None,
    batch_size: int = 32,
    max_length: int = 256,
) -> Iterator[dict[str, Any]]:
    """Tokenized batches of texts with their group ids (and labels) in the form `fit_eraser` reads."""
    groups = np.asarray(groups)
    for s in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[s : s + batch_size]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        batch = {k: v for k, v in enc.items() if k in _MODEL_INPUTS}
        batch[GROUP_KEY] = torch.as_tensor(groups[s : s + batch_size])
        if labels is not None:
            batch["labels"] = torch.as_tensor(np.asarray(labels)[s : s + batch_size])
        yield batch


def head_inputs(model: nn.Module, tokenizer: Any, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """The representation each text feeds the head with (one row per text; sequence classifiers)."""
    batches = text_batches(tokenizer, texts, np.zeros(len(texts), int), batch_size=batch_size)
    return collect_head_inputs(model, batches).x


def combine_groups(columns: list[list[Any]]) -> tuple[np.ndarray, list[str]]:
    """Intersectional group ids from several group columns: each combined value (`female|black`) is one group.

    Rows with a missing value in any column get -1. Returns the ids and the names, in id order.
    """
    n = len(columns[0])
    names: dict[str, int] = {}
    ids = np.full(n, -1, dtype=int)
    for i in range(n):
        values = [col[i] for col in columns]
        if any(v is None or (isinstance(v, float) and np.isnan(v)) or v == "" for v in values):
            continue
        key = "|".join(str(v) for v in values)
        ids[i] = names.setdefault(key, len(names))
    ordered = sorted(names, key=names.get)
    return ids, ordered
