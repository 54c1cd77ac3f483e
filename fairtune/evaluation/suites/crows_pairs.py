"""`crows_pairs` suite: CrowS-Pairs (Nangia et al. 2020) on masked LMs (pseudo-log-likelihood) or causal LMs."""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.data_paths import resolve_data
from fairtune.evaluation.lm_scoring import (
    causal_logprobs,
    causal_sentence_ids,
    masked_logprobs,
    masked_logprobs_reference,
    pll_variants,
)
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.metrics.bootstrap import bootstrap_intervals
from fairtune.metrics.crows_pairs import crows_pairs_score

NAME = "crows_pairs"


@dataclass
class Options:
    """Options of the `crows_pairs` suite.

    Args:
        data: crows_pairs_anonymized.csv (columns sent_more, sent_less, stereo_antistereo, bias_type).
        max_examples: evaluate only the first N pairs (None: all).
        bias_types: keep only these bias types.
    """

    data: str | None = None
    max_examples: int | None = None
    bias_types: list[str] | None = None


def load_crows_pairs(
    path: str | Path, max_examples: int | None = None, bias_types: list[str] | None = None
) -> list[dict[str, str]]:
    """Rows of the CrowS-Pairs csv as dicts with sent_more, sent_less, direction, bias_type."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if bias_types and r["bias_type"] not in bias_types:
                continue
            rows.append(
                {
                    "sent_more": r["sent_more"],
                    "sent_less": r["sent_less"],
                    "direction": r["stereo_antistereo"],
                    "bias_type": r["bias_type"],
                }
            )
            if max_examples is not None and len(rows) >= max_examples:
                break
    if not rows:
        raise ValueError(f"no CrowS-Pairs rows read from {path}")
    return rows


def _special_positions(tokenizer: Any, ids: list[int]) -> set[int]:
    """Positions of special tokens ([CLS], [SEP], <s>, ...)."""
    special = set(tokenizer.all_special_ids)
    return {i for i, t in enumerate(ids) if t in special}


def shared_token_positions(tokenizer: Any, ids_a: list[int], ids_b: list[int]) -> tuple[list[int], list[int]]:
    """Positions of the tokens both sentences share (difflib 'equal' blocks), special tokens excluded."""
    pos_a, pos_b = [], []
    matcher = difflib.SequenceMatcher(None, ids_a, ids_b, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            pos_a.extend(range(a0, a1))
            pos_b.extend(range(b0, b1))
    skip_a, skip_b = _special_positions(tokenizer, ids_a), _special_positions(tokenizer, ids_b)
    keep = [(a, b) for a, b in zip(pos_a, pos_b) if a not in skip_a and b not in skip_b]
    return [a for a, _ in keep], [b for _, b in keep]


def masked_pair_scores(
    model: Any,
    tokenizer: Any,
    pairs: list[tuple[str, str]],
    *,
    batch_size: int = 64,
    progress: bool = False,
    reference: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-log-likelihood of each sentence over the tokens the pair shares, one token masked at a time."""
    variants, owner = [], []
    for k, (a, b) in enumerate(pairs):
        ids_a = tokenizer(a)["input_ids"]
        ids_b = tokenizer(b)["input_ids"]
        pos_a, pos_b = shared_token_positions(tokenizer, ids_a, ids_b)
        for side, ids, pos in ((0, ids_a, pos_a), (1, ids_b, pos_b)):
            vs = pll_variants(ids, pos)
            variants.extend(vs)
            owner.extend([(k, side)] * len(vs))
    if reference:
        logp = masked_logprobs_reference(model, variants, mask_token_id=tokenizer.mask_token_id, progress=progress)
    else:
        logp = masked_logprobs(
            model,
            variants,
            mask_token_id=tokenizer.mask_token_id,
            pad_token_id=tokenizer.pad_token_id,
            batch_size=batch_size,
            progress=progress,
        )
    scores = np.zeros((len(pairs), 2))
    for (k, side), lp in zip(owner, logp):
        scores[k, side] += lp
    return scores[:, 0], scores[:, 1]


def causal_pair_scores(
    model: Any, tokenizer: Any, pairs: list[tuple[str, str]], *, batch_size: int = 16, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Sentence log-likelihood of each sentence of each pair under a causal LM."""
    seqs = [causal_sentence_ids(tokenizer, s) for pair in pairs for s in pair]
    sums, _ = causal_logprobs(
        model, seqs, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size, progress=progress
    )
    return sums[0::2], sums[1::2]


def run(loaded: LoadedModel, options: Options, settings: EvalSettings) -> SuiteResult:
    """Score every pair: `crows_pairs_score` overall and per bias type, the official stereotype / anti-stereotype
    sub-scores, with bootstrap intervals."""
    require_kind(loaded, NAME, ("masked_lm", "causal_lm"))
    path = resolve_data(
        options.data,
        "crows_pairs/crows_pairs_anonymized.csv",
        NAME,
        "Get crows_pairs_anonymized.csv from github.com/nyu-mll/crows-pairs.",
    )
    rows = load_crows_pairs(path, options.max_examples, options.bias_types)
    pairs = [(r["sent_more"], r["sent_less"]) for r in rows]
    if loaded.kind == "masked_lm":
        more, less = masked_pair_scores(
            loaded.model, loaded.tokenizer, pairs, batch_size=max(settings.batch_size, 8), progress=settings.progress
        )
    else:
        more, less = causal_pair_scores(
            loaded.model, loaded.tokenizer, pairs, batch_size=settings.batch_size, progress=settings.progress
        )
    types = [r["bias_type"] for r in rows]
    directions = [r["direction"] for r in rows]
    scores = crows_pairs_score(more, less, types, directions=directions)
    intervals = bootstrap_intervals(
        lambda m, le, t, d: _for_ci(crows_pairs_score(m, le, t, directions=d)),
        [more, less, np.asarray(types, dtype=object), np.asarray(directions, dtype=object)],
        n_resamples=settings.n_bootstrap,
        confidence=settings.confidence,
        seed=settings.seed,
    )
    breakdown = {
        t: {"crows_pairs_score": v["crows_pairs_score"], "count": v["count"]}
        for t, v in scores["per_bias_type"].items()
    }
    return SuiteResult(
        suite=NAME,
        metrics={
            "crows_pairs_score": scores["crows_pairs_score"],
            "crows_pairs_neutral": scores["crows_pairs_neutral"],
            "crows_pairs_stereo_score": scores["crows_pairs_stereo_score"],
            "crows_pairs_antistereo_score": scores["crows_pairs_antistereo_score"],
        },
        intervals=intervals,
        breakdown=breakdown,
        breakdown_label="bias type",
        plot_columns=["crows_pairs_score"],
        details={
            "n_pairs": scores["n_pairs"],
            "n_stereo": scores["n_stereo"],
            "n_antistereo": scores["n_antistereo"],
            "method": "pseudo-log-likelihood" if loaded.kind == "masked_lm" else "log-likelihood",
            "data": str(path),
        },
        notes=["50 is unbiased; above 50 the model prefers the more stereotypical sentence."],
    )


def _for_ci(scores: dict[str, Any]) -> dict[str, Any]:
    """Reshape per-bias-type scores to the `<row>/<column>` keys the report reads."""
    keys = ("crows_pairs_score", "crows_pairs_neutral", "crows_pairs_stereo_score", "crows_pairs_antistereo_score")
    out = {k: scores[k] for k in keys if k in scores}
    for t, v in scores.get("per_bias_type", {}).items():
        out[t] = {"crows_pairs_score": v["crows_pairs_score"]}
    return out
