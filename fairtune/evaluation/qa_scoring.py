"""Extractive QA span scoring: how strongly a QA model points at given character spans of its context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def span_logits(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    *,
    batch_size: int = 16,
    max_length: int = 384,
    progress: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each example and each char span of its context: start+end logit and sqrt(P(start) * P(end)).

    Start/end probabilities are softmaxes over the context tokens only. A span cut off by truncation scores -inf
    (probability 0). Returns two lists (one array per example, one value per span).
    """
    import torch

    device = next(model.parameters()).device
    logits_out: list[np.ndarray] = []
    probs_out: list[np.ndarray] = []
    starts = range(0, len(questions), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="QA span scoring", leave=False)
    with torch.inference_mode():
        for b in starts:
            q, c = list(questions[b : b + batch_size]), list(contexts[b : b + batch_size])
            enc = tokenizer(
                q,
                c,
                truncation="only_second",
                max_length=max_length,
                padding=True,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            offsets = enc.pop("offset_mapping")
            inputs = {
                k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")
            }
            out = model(**inputs)
            start_l, end_l = out.start_logits.float().cpu(), out.end_logits.float().cpu()
            for i in range(len(q)):
                seq_ids = enc.sequence_ids(i)
                ctx = torch.tensor([s == 1 for s in seq_ids])
                sl = start_l[i].masked_fill(~ctx, float("-inf"))
                el = end_l[i].masked_fill(~ctx, float("-inf"))
                sp, ep = torch.softmax(sl, -1), torch.softmax(el, -1)
                off = offsets[i].tolist()
                lg, pr = [], []
                for c0, c1 in spans[b + i]:
                    tok = [t for t, (s, e) in enumerate(off) if seq_ids[t] == 1 and e > s and s < c1 and e > c0]
                    if not tok:
                        lg.append(float("-inf"))
                        pr.append(0.0)
                        continue
                    s_t, e_t = tok[0], tok[-1]
                    lg.append(float(sl[s_t] + el[e_t]))
                    pr.append(float(torch.sqrt(sp[s_t] * ep[e_t])))
                logits_out.append(np.asarray(lg))
                probs_out.append(np.asarray(pr))
    return logits_out, probs_out


def find_spans(text: str, needle: str) -> list[tuple[int, int]]:
    """All case-insensitive occurrences of `needle` in `text` as character spans."""
    if not needle:
        return []
    low, n = text.lower(), needle.lower()
    spans, i = [], low.find(n)
    while i >= 0:
        spans.append((i, i + len(n)))
        i = low.find(n, i + 1)
    return spans
