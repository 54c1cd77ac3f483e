"""Sentence scoring with language models: batched masked-LM pseudo-log-likelihood and causal log-likelihood.

Masked LMs: a *variant* is one input with one position masked, `(input_ids, position, target_id)`; its score is
log P(target | input). Variants are sorted by length and batched, the encoder runs once per batch and the LM
head is applied only at the masked positions (a `V`-wide projection on `B` vectors instead of `B x L`).
`masked_logprobs_reference` runs one full forward per variant; it is the slow reference used by tests and the
benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Variant = tuple[Sequence[int], int, int]


def _progress(iterable: Any, desc: str, enabled: bool, total: int | None = None) -> Any:
    """Wrap with a tqdm bar when enabled."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def mlm_head(model: Any) -> Callable[[Any], Any] | None:
    """A callable mapping encoder hidden states (n, H) to vocabulary logits (n, V), or None if unknown."""
    for name in ("cls", "lm_head", "predictions"):
        head = getattr(model, name, None)
        if head is not None and callable(head):
            return head
    if all(hasattr(model, n) for n in ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector")):
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    if hasattr(model, "generator_predictions") and hasattr(model, "generator_lm_head"):
        return lambda h: model.generator_lm_head(model.generator_predictions(h))
    return None


def _pad(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """Right-pad id lists into (ids, attention_mask) tensors."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def masked_logprobs(
    model: Any,
    variants: Sequence[Variant],
    *,
    mask_token_id: int,
    pad_token_id: int,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """log P(target | input with `position` masked) for every variant, batched; returns a float64 array."""
    import torch

    device = next(model.parameters()).device
    head = mlm_head(model)
    order = sorted(range(len(variants)), key=lambda i: len(variants[i][0]))
    out = np.zeros(len(variants), dtype=np.float64)
    starts = range(0, len(order), batch_size)
    with torch.inference_mode():
        for start in _progress(starts, "masked LM scoring", progress, total=len(starts)):
            idx = order[start : start + batch_size]
            rows = []
            for i in idx:
                ids = list(variants[i][0])
                ids[variants[i][1]] = mask_token_id
                rows.append(ids)
            ids_t, mask_t = _pad(rows, pad_token_id, device)
            positions = torch.as_tensor([variants[i][1] for i in idx], device=device)
            targets = torch.as_tensor([variants[i][2] for i in idx], device=device)
            rows_t = torch.arange(len(idx), device=device)
            if head is not None:
                hidden = model.base_model(input_ids=ids_t, attention_mask=mask_t)[0]
                logits = head(hidden[rows_t, positions])
            else:  # unknown head layout: full logits, still one forward per batch
                logits = model(input_ids=ids_t, attention_mask=mask_t).logits[rows_t, positions]
            logp = torch.log_softmax(logits.float(), dim=-1)[rows_t, targets]
            out[idx] = logp.double().cpu().numpy()
    return out


def masked_logprobs_reference(
    model: Any, variants: Sequence[Variant], *, mask_token_id: int, progress: bool = False
) -> np.ndarray:
    """Reference: one full forward per variant (unbatched, LM head over every position)."""
    import torch

    device = next(model.parameters()).device
    out = np.zeros(len(variants), dtype=np.float64)
    with torch.inference_mode():
        for i, (ids, pos, target) in enumerate(_progress(variants, "reference scoring", progress)):
            masked = list(ids)
            masked[pos] = mask_token_id
            logits = model(input_ids=torch.as_tensor([masked], device=device)).logits[0, pos]
            out[i] = float(torch.log_softmax(logits.float(), dim=-1)[target])
    return out


def pll_variants(input_ids: Sequence[int], positions: Sequence[int]) -> list[Variant]:
    """One masked variant per position, each predicting the original token there."""
    return [(input_ids, p, int(input_ids[p])) for p in positions]


def causal_logprobs(
    model: Any,
    sequences: Sequence[tuple[Sequence[int], int]],
    *,
    pad_token_id: int,
    batch_size: int = 16,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """For each `(ids, start)`: sum of log P(ids[t] | ids[:t]) over t >= max(start, 1), and the number of tokens."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    sums = np.zeros(len(sequences), dtype=np.float64)
    counts = np.zeros(len(sequences), dtype=np.int64)
    starts = range(0, len(order), batch_size)
    with torch.inference_mode():
        for start in _progress(starts, "causal LM scoring", progress, total=len(starts)):
            idx = order[start : start + batch_size]
            ids_t, mask_t = _pad([sequences[i][0] for i in idx], pad_token_id, device)
            logits = model(input_ids=ids_t, attention_mask=mask_t).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids_t[:, 1:, None])[..., 0]
            for row, i in enumerate(idx):
                n, first = len(sequences[i][0]), max(int(sequences[i][1]), 1)
                sums[i] = float(logp[row, first - 1 : n - 1].double().sum())
                counts[i] = max(n - first, 0)
    return sums, counts


def causal_sentence_ids(tokenizer: Any, text: str) -> tuple[list[int], int]:
    """Token ids of a sentence for likelihood scoring, with BOS prepended when the tokenizer has one."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None:
        return [bos, *ids], 1
    return list(ids), 1


def causal_continuation_ids(tokenizer: Any, prefix: str, continuation: str) -> tuple[list[int], int]:
    """Ids of `prefix + continuation` (tokenized separately) and the index where the continuation starts."""
    head, start = causal_sentence_ids(tokenizer, prefix)
    tail = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    return [*head, *tail], len(head) if head else start
