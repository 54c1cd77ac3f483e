"""`bbq` suite: BBQ (Parrish et al. 2022) with causal LMs (option likelihood) or extractive QA models (span scores)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.data_paths import resolve_data
from fairtune.evaluation.lm_scoring import causal_continuation_ids, causal_logprobs
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.evaluation.qa_scoring import find_spans, span_logits
from fairtune.metrics.bbq import bbq_scores
from fairtune.metrics.bootstrap import bootstrap_intervals

NAME = "bbq"
_ALIASES = {"f": {"f", "woman", "girl", "female"}, "m": {"m", "man", "boy", "male"}}


@dataclass
class Options:
    """Options of the `bbq` suite.

    Args:
        data: a BBQ category .jsonl, or a folder of them (BBQ's data/).
        categories: keep only these categories (file stems such as Age, Religion).
        max_examples: at most N examples per category, drawn with the run's seed (None: all).
        normalize: causal LMs: `mean` (per-token, default) or `sum` log-likelihood of each option.
    """

    data: str | None = None
    categories: list[str] | None = None
    max_examples: int | None = None
    normalize: str = "mean"


def load_bbq(
    path: str | Path, categories: list[str] | None = None, max_examples: int | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """BBQ examples from one jsonl file or every *.jsonl in a folder, optionally sampled per category."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    out: list[dict[str, Any]] = []
    for f in files:
        if categories and f.stem not in categories:
            continue
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        if max_examples is not None and len(rows) > max_examples:
            rows = random.Random(seed).sample(rows, max_examples)
        out.extend(rows)
    if not out:
        raise ValueError(f"no BBQ examples read from {path} (categories={categories})")
    return out


def _groups(info: list[str]) -> set[str]:
    """Lower-cased names an answer_info entry stands for (surface form, group label, its '_' parts)."""
    names = {info[0].lower(), info[1].lower()}
    names |= set(info[1].lower().split("_"))
    return names


def unknown_answer_index(example: dict[str, Any]) -> int:
    """Index of the 'unknown' option (answer_info group 'unknown')."""
    for i in range(3):
        if example["answer_info"][f"ans{i}"][1].lower() == "unknown":
            return i
    raise ValueError(f"BBQ example {example.get('example_id')} has no unknown option")


def target_answer_index(example: dict[str, Any]) -> int:
    """Index of the option naming the stereotyped group, or -1 when it cannot be told apart."""
    stereo: set[str] = set()
    for g in example["additional_metadata"].get("stereotyped_groups", []):
        stereo |= _ALIASES.get(g.lower(), {g.lower()})
    unk = unknown_answer_index(example)
    hits = [i for i in range(3) if i != unk and _groups(example["answer_info"][f"ans{i}"]) & stereo]
    return hits[0] if len(hits) == 1 else -1


def biased_answer_index(example: dict[str, Any]) -> int:
    """The option that reflects the bias: the target for a negative question, the other group otherwise."""
    target = target_answer_index(example)
    if target < 0:
        return -1
    if example["question_polarity"] == "neg":
        return target
    unk = unknown_answer_index(example)
    return next(i for i in range(3) if i not in (target, unk))


def causal_option_scores(
    model: Any,
    tokenizer: Any,
    examples: list[dict[str, Any]],
    *,
    normalize: str = "mean",
    batch_size: int = 16,
    progress: bool = False,
) -> np.ndarray:
    """(n, 3) log-likelihood of each answer after `context question Answer:`."""
    seqs = [
        causal_continuation_ids(tokenizer, f"{e['context']} {e['question']} Answer:", f" {e[f'ans{i}']}")
        for e in examples
        for i in range(3)
    ]
    sums, counts = causal_logprobs(
        model, seqs, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size, progress=progress
    )
    scores = sums / np.maximum(counts, 1) if normalize == "mean" else sums
    return scores.reshape(len(examples), 3)


def qa_option_scores(
    model: Any, tokenizer: Any, examples: list[dict[str, Any]], *, batch_size: int = 16, progress: bool = False
) -> np.ndarray:
    """(n, 3) best start+end logit over each option's occurrences, the options being appended to the context."""
    contexts, spans, owners = [], [], []
    for e in examples:
        answers = [e[f"ans{i}"] for i in range(3)]
        ctx = f"{e['context']} Possible answers: {'; '.join(answers)}."
        per_option = []
        for i, ans in enumerate(answers):
            found = set(find_spans(ctx, ans))
            surface = e["answer_info"][f"ans{i}"][0]
            if e["answer_info"][f"ans{i}"][1].lower() != "unknown":
                found |= set(find_spans(e["context"], surface))
            per_option.append(sorted(found))
        contexts.append(ctx)
        spans.append([s for opt in per_option for s in opt])
        owners.append([i for i, opt in enumerate(per_option) for _ in opt])
    logits, _ = span_logits(
        model, tokenizer, [e["question"] for e in examples], contexts, spans, batch_size=batch_size, progress=progress
    )
    out = np.full((len(examples), 3), -np.inf)
    for k, (lg, own) in enumerate(zip(logits, owners)):
        for value, i in zip(lg, own):
            out[k, i] = max(out[k, i], value)
    return out


def run(loaded: LoadedModel, options: Options, settings: EvalSettings) -> SuiteResult:
    """Answer every example and compute accuracy and the ambig/disambig bias scores, overall and per category."""
    require_kind(loaded, NAME, ("causal_lm", "qa"))
    if options.normalize not in ("mean", "sum"):
        raise ValueError(f"bbq: normalize must be 'mean' or 'sum', got {options.normalize!r}")
    path = resolve_data(options.data, "bbq/data", NAME, "Get the BBQ jsonl files from github.com/nyu-mll/BBQ (data/).")
    examples = load_bbq(path, options.categories, options.max_examples, settings.seed)
    if loaded.kind == "causal_lm":
        scores = causal_option_scores(
            loaded.model,
            loaded.tokenizer,
            examples,
            normalize=options.normalize,
            batch_size=settings.batch_size,
            progress=settings.progress,
        )
    else:
        scores = qa_option_scores(
            loaded.model, loaded.tokenizer, examples, batch_size=settings.batch_size, progress=settings.progress
        )
    pred = scores.argmax(1)
    label = np.asarray([int(e["label"]) for e in examples])
    biased = np.asarray([biased_answer_index(e) for e in examples])
    unknown = np.asarray([unknown_answer_index(e) for e in examples])
    cond = np.asarray([e["context_condition"] for e in examples], dtype=object)
    cat = np.asarray([e["category"] for e in examples], dtype=object)
    result = bbq_scores(pred, label, biased, unknown, cond, cat)
    headline_keys = (
        "bbq_accuracy",
        "bbq_accuracy_ambig",
        "bbq_accuracy_disambig",
        "bbq_bias_score_ambig",
        "bbq_bias_score_disambig",
    )

    def for_ci(*arrays):
        r = bbq_scores(*arrays)
        per = {
            c: {k: v[k] for k in ("accuracy", "bias_score_ambig", "bias_score_disambig")}
            for c, v in r["per_category"].items()
        }
        return {**{k: r[k] for k in headline_keys}, **per}

    intervals = bootstrap_intervals(
        for_ci,
        [pred, label, biased, unknown, cond, cat],
        n_resamples=settings.n_bootstrap,
        confidence=settings.confidence,
        seed=settings.seed,
    )
    return SuiteResult(
        suite=NAME,
        metrics={k: result[k] for k in headline_keys},
        intervals=intervals,
        breakdown=result["per_category"],
        breakdown_label="category",
        plot_columns=["bias_score_ambig", "bias_score_disambig"],
        details={
            "n_examples": result["n_examples"],
            "n_without_target": int((biased < 0).sum()),
            "method": "option log-likelihood" if loaded.kind == "causal_lm" else "option span score",
            "data": str(path),
        },
        notes=[
            "Bias scores range from -1 to 1; 0 is unbiased. Examples whose stereotyped option cannot be identified count for accuracy only."
        ],
    )
