"""`stereoset` suite: StereoSet intrasentence (Nadeem et al. 2021), original json or the derived jsonl/csv format."""

from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.data_paths import resolve_data
from fairtune.evaluation.lm_scoring import causal_logprobs, causal_sentence_ids, masked_logprobs
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.metrics.bootstrap import bootstrap_intervals
from fairtune.metrics.stereoset import stereoset_scores

NAME = "stereoset"
LABELS = ("stereotype", "anti_stereotype", "unrelated")


@dataclass
class Options:
    """Options of the `stereoset` suite.

    Args:
        data: StereoSet dev.json (original format), or the derived intrasentence .jsonl / .csv.
        max_examples: evaluate only the first N items.
    """

    data: str | None = None
    max_examples: int | None = None


@dataclass
class Item:
    """One intrasentence item: a context with BLANK and its three candidate sentences with filler spans."""

    context: str
    target: str
    bias_type: str
    sentences: dict[str, tuple[str, tuple[int, int]]]


def _filled(context: str, word: str) -> tuple[str, tuple[int, int]]:
    """The sentence with BLANK replaced by `word`, and the character span of `word`."""
    i = context.index("BLANK")
    return context[:i] + word + context[i + len("BLANK") :], (i, i + len(word))


def _span_in_sentence(context: str, sentence: str) -> tuple[int, int]:
    """Character span of what fills BLANK, from the context's prefix and suffix around it."""
    i = context.find("BLANK")
    if i < 0:
        raise ValueError(f"StereoSet context without BLANK: {context!r}")
    prefix, suffix = context[:i], context[i + len("BLANK") :]
    if (
        sentence.lower().startswith(prefix.lower())
        and sentence.lower().endswith(suffix.lower())
        and len(sentence) >= len(prefix) + len(suffix)
    ):
        return len(prefix), len(sentence) - len(suffix)
    # fall back to the first differing word window
    a, b = prefix.rstrip().split(), sentence.split()
    start = len(" ".join(b[: len(a)])) + (1 if a else 0)
    n_suffix = len(suffix.split())
    end_words = b[: len(b) - n_suffix] if n_suffix else b
    return start, max(start, len(" ".join(end_words)))


def parse_choices(text: str) -> list[str]:
    """Parse a numpy-array repr of strings such as `['asian' 'hispanic' 'fox']`."""
    return [ast.literal_eval(m) for m in re.findall(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", text)]


def load_stereoset(path: str | Path, max_examples: int | None = None) -> list[Item]:
    """Intrasentence items from the original json, the derived jsonl, or the derived csv."""
    path = Path(path)
    items: list[Item] = []
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["data"]["intrasentence"] if "data" in data else data["intrasentence"]
        label_names = {0: "anti_stereotype", 1: "stereotype", 2: "unrelated"}
        for e in entries:
            sents = {}
            for s in e["sentences"]:
                gold = s["gold_label"]
                label = label_names[gold] if isinstance(gold, int) else gold.replace("-", "_")
                sents[label] = (s["sentence"], _span_in_sentence(e["context"], s["sentence"]))
            items.append(Item(e["context"], e["target"], e["bias_type"], sents))
    elif path.suffix == ".jsonl":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                items.append(
                    Item(r["context"], r["target"], r["bias_type"], {k: _filled(r["context"], r[k]) for k in LABELS})
                )
    elif path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                choices = parse_choices(r["choices"])
                if len(choices) != 3:
                    raise ValueError(f"expected 3 choices, got {choices!r} in {path}")
                items.append(
                    Item(
                        r["prompt"],
                        r["target"],
                        r["bias_type"],
                        {k: _filled(r["prompt"], c) for k, c in zip(LABELS, choices)},
                    )
                )
    else:
        raise ValueError(f"unsupported StereoSet file {path} (use dev.json, .jsonl or .csv)")
    items = [it for it in items if set(it.sentences) == set(LABELS)]
    if max_examples is not None:
        items = items[:max_examples]
    if not items:
        raise ValueError(f"no StereoSet intrasentence items read from {path}")
    return items


def masked_filler_scores(
    model: Any,
    tokenizer: Any,
    sentences: list[tuple[str, tuple[int, int]]],
    *,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Mean probability of the filler's tokens, each masked left to right with later filler tokens removed."""
    variants, owner = [], []
    for k, (sentence, (c0, c1)) in enumerate(sentences):
        enc = tokenizer(sentence, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        special = set(tokenizer.all_special_ids)
        pos = [i for i, (s, e) in enumerate(offsets) if ids[i] not in special and e > s and s < c1 and e > c0]
        if not pos:
            raise ValueError(f"no tokens found for the filler in {sentence!r}")
        first, last = pos[0], pos[-1]
        for p in range(first, last + 1):
            variants.append(([*ids[:p], tokenizer.mask_token_id, *ids[last + 1 :]], p, ids[p]))
            owner.append(k)
    logp = masked_logprobs(
        model,
        variants,
        mask_token_id=tokenizer.mask_token_id,
        pad_token_id=tokenizer.pad_token_id,
        batch_size=batch_size,
        progress=progress,
    )
    probs = np.zeros(len(sentences))
    counts = np.zeros(len(sentences))
    np.add.at(probs, owner, np.exp(logp))
    np.add.at(counts, owner, 1)
    return probs / counts


def causal_sentence_scores(
    model: Any, tokenizer: Any, sentences: list[str], *, batch_size: int = 16, progress: bool = False
) -> np.ndarray:
    """Mean token log-probability of each sentence (the log of the reference's geometric-mean probability)."""
    sums, counts = causal_logprobs(
        model,
        [causal_sentence_ids(tokenizer, s) for s in sentences],
        pad_token_id=tokenizer.pad_token_id,
        batch_size=batch_size,
        progress=progress,
    )
    return sums / np.maximum(counts, 1)


def run(loaded: LoadedModel, options: Options, settings: EvalSettings) -> SuiteResult:
    """Score the three candidates of every item and compute ss, lms and icat overall and per bias type."""
    require_kind(loaded, NAME, ("masked_lm", "causal_lm"))
    path = resolve_data(
        options.data,
        "stereoset_derived/intrasentence_stereo_set.jsonl",
        NAME,
        "Get StereoSet dev.json from github.com/moinnadeem/StereoSet.",
    )
    items = load_stereoset(path, options.max_examples)
    flat = [it.sentences[label] for it in items for label in LABELS]
    if loaded.kind == "masked_lm":
        scores = masked_filler_scores(
            loaded.model, loaded.tokenizer, flat, batch_size=max(settings.batch_size, 8), progress=settings.progress
        )
    else:
        scores = causal_sentence_scores(
            loaded.model,
            loaded.tokenizer,
            [s for s, _ in flat],
            batch_size=settings.batch_size,
            progress=settings.progress,
        )
    s, a, u = scores[0::3], scores[1::3], scores[2::3]
    targets = np.asarray([it.target for it in items], dtype=object)
    types = np.asarray([it.bias_type for it in items], dtype=object)
    result = stereoset_scores(s, a, u, targets, types)
    headline = {k: result[k] for k in ("stereoset_ss", "stereoset_lms", "stereoset_icat")}

    def for_ci(s_, a_, u_, t_, b_):
        r = stereoset_scores(s_, a_, u_, t_, b_)
        return {
            **{k: r[k] for k in headline},
            **{bt: {"ss": v["ss"], "lms": v["lms"], "icat": v["icat"]} for bt, v in r["per_bias_type"].items()},
        }

    intervals = bootstrap_intervals(
        for_ci,
        [s, a, u, targets, types],
        n_resamples=settings.n_bootstrap,
        confidence=settings.confidence,
        seed=settings.seed,
    )
    return SuiteResult(
        suite=NAME,
        metrics=headline,
        intervals=intervals,
        breakdown=result["per_bias_type"],
        breakdown_label="bias type",
        plot_columns=["ss"],
        details={
            "n_items": result["n_items"],
            "data": str(path),
            "score": "mean filler-token probability" if loaded.kind == "masked_lm" else "mean token log-probability",
        },
        notes=["ss: 50 is unbiased; lms: 100 is ideal; icat: 100 is ideal. Averages are over target terms."],
    )
