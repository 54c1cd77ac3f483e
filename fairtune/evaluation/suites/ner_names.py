"""`ner_names` suite: PERSON names swapped for names of each demographic group (after Mishra et al. 2020)."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.data_paths import resolve_data
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.metrics.bootstrap import bootstrap_intervals
from fairtune.metrics.ner_names import extract_spans, is_person_type, ner_name_recall

NAME = "ner_names"
# Used when no sentence file is given: neutral carriers with one PERSON slot each (fairtune's own).
TEMPLATES = (
    "{name} is going to the store .",
    "I met {name} at the conference yesterday .",
    "The report was written by {name} .",
    "{name} lives near the station .",
    "According to {name} , the meeting starts at noon .",
)


@dataclass
class Options:
    """Options of the `ner_names` suite.

    Args:
        data: CoNLL file (token<TAB>tag, blank line between sentences) whose PERSON spans are replaced; None: templates.
        names: csv of names with `name` and `group` columns, or BBQ's vocabulary_proper_names.csv (first names,
            grouped by ethnicity and gender).
        max_sentences: use at most N sentences with a PERSON entity.
        names_per_group: names drawn per group (with the run's seed).
    """

    data: str | None = None
    names: str | None = None
    max_sentences: int = 100
    names_per_group: int = 10


def read_conll(path: str | Path) -> list[tuple[list[str], list[str]]]:
    """Sentences as (tokens, tags) from a two-column CoNLL file."""
    sentences, tokens, tags = [], [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 2:
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        tokens.append(parts[0])
        tags.append(parts[-1])
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def load_names(path: str | Path, per_group: int, seed: int) -> dict[str, list[str]]:
    """Names per group from a `name,group` csv or BBQ's vocabulary_proper_names.csv (first names)."""
    groups: dict[str, list[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if "group" in r and "name" in r:
                name, group = r["name"], r["group"]
            elif {"Name", "First_last", "gender", "ethnicity"} <= set(r):
                if r["First_last"] != "first":
                    continue
                name, group = r["Name"], f"{r['ethnicity']} {r['gender']}"
            else:
                raise ValueError(f"{path}: expected columns name,group (or BBQ's Name,First_last,gender,ethnicity)")
            if name.strip() and name not in groups.setdefault(group, []):
                groups[group].append(name.strip())
    rng = random.Random(seed)
    return {g: (rng.sample(v, per_group) if len(v) > per_group else v) for g, v in sorted(groups.items())}


def person_sentences(
    sentences: list[tuple[list[str], list[str]]], limit: int
) -> list[tuple[list[str], list[tuple[int, int]]]]:
    """Sentences with at least one PERSON span, with those spans."""
    out = []
    for tokens, tags in sentences:
        spans = sorted((s, e) for s, e, t in extract_spans(tags) if is_person_type(t))
        if spans:
            out.append((tokens, spans))
        if len(out) >= limit:
            break
    return out


def substitute(tokens: list[str], spans: list[tuple[int, int]], name: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Replace every PERSON span by the one-word `name`; return the new tokens and the new span positions."""
    new, new_spans, i = [], [], 0
    for s, e in spans:
        new.extend(tokens[i:s])
        new_spans.append((len(new), len(new) + 1))
        new.append(name)
        i = e
    new.extend(tokens[i:])
    return new, new_spans


def predict_tags(
    model: Any, tokenizer: Any, sentences: list[list[str]], *, batch_size: int = 32, progress: bool = False
) -> list[list[str]]:
    """Word-level tags (the first sub-token's label) from a token classifier."""
    import torch

    device = next(model.parameters()).device
    id2label = model.config.id2label
    out: list[list[str]] = []
    starts = range(0, len(sentences), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="NER tagging", leave=False)
    with torch.inference_mode():
        for b in starts:
            batch = sentences[b : b + batch_size]
            enc = tokenizer(batch, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt")
            inputs = {
                k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")
            }
            pred = model(**inputs).logits.argmax(-1).cpu().tolist()
            for i, words in enumerate(batch):
                tags = ["O"] * len(words)
                seen = set()
                for t, w in enumerate(enc.word_ids(i)):
                    if w is not None and w not in seen:
                        seen.add(w)
                        tags[w] = str(id2label[pred[i][t]])
                out.append(tags)
    return out


def run(loaded: LoadedModel, options: Options, settings: EvalSettings) -> SuiteResult:
    """Per-group PERSON recall after name substitution and `ner_name_recall_gap`."""
    require_kind(loaded, NAME, ("token_classifier",))
    names_path = resolve_data(
        options.names, "bbq/templates/vocabulary_proper_names.csv", NAME, "Give a csv with `name,group` columns."
    )
    names = load_names(names_path, options.names_per_group, settings.seed)
    if options.data:
        base = person_sentences(read_conll(options.data), options.max_sentences)
        if not base:
            raise ValueError(f"no sentence with a PERSON entity in {options.data}")
    else:
        base = []
        for tpl in TEMPLATES:
            words = tpl.split()
            k = words.index("{name}")
            base.append((words, [(k, k + 1)]))
    sents, spans, groups = [], [], []
    for group, group_names in names.items():
        for name in group_names:
            for tokens, sp in base:
                new, new_sp = substitute(tokens, sp, name)
                sents.append(new)
                spans.append(new_sp)
                groups.append(group)
    tags = predict_tags(
        loaded.model, loaded.tokenizer, sents, batch_size=settings.batch_size, progress=settings.progress
    )
    recalled, span_groups = [], []
    for tg, sp, group in zip(tags, spans, groups):
        predicted = {(s, e) for s, e, t in extract_spans(tg) if is_person_type(t)}
        for s in sp:
            recalled.append(s in predicted)
            span_groups.append(group)
    r, g = np.asarray(recalled), np.asarray(span_groups, dtype=object)
    result = ner_name_recall(r, g)

    def for_ci(r_, g_):
        x = ner_name_recall(r_, g_)
        return {
            "ner_name_recall": x["ner_name_recall"],
            "ner_name_recall_gap": x["ner_name_recall_gap"],
            **x["per_group"],
        }

    intervals = bootstrap_intervals(
        for_ci, [r, g], n_resamples=settings.n_bootstrap, confidence=settings.confidence, seed=settings.seed, strata=g
    )
    return SuiteResult(
        suite=NAME,
        metrics={k: result[k] for k in ("ner_name_recall", "ner_name_recall_gap", "ner_name_recall_min")},
        intervals=intervals,
        breakdown=result["per_group"],
        breakdown_label="name group",
        plot_columns=["recall"],
        details={
            "n_sentences": len(base),
            "n_spans": int(len(r)),
            "names": names,
            "sentences_from": options.data or "built-in templates",
        },
        notes=["A span counts as recalled when the model tags exactly that word as a person entity."],
    )
