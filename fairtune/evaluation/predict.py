"""Batched classifier inference: class probabilities for a list of texts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classifier_probs(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = 256,
    progress: bool = False,
    desc: str = "classifying",
) -> np.ndarray:
    """Softmax probabilities (n, num_labels) of a sequence classifier over `texts`."""
    import torch

    device = next(model.parameters()).device
    out = []
    starts = range(0, len(texts), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, leave=False)
    with torch.inference_mode():
        for s in starts:
            enc = tokenizer(
                list(texts[s : s + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            out.append(torch.softmax(model(**enc).logits.float(), dim=-1).cpu().numpy())
    if not out:
        return np.zeros((0, getattr(model.config, "num_labels", 2)))
    return np.concatenate(out).astype(np.float64)
