"""`qa_unqover` suite: UnQover underspecified questions (Li et al. 2020) for extractive QA models."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.data_paths import resolve_data
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.evaluation.qa_scoring import find_spans, span_logits
from fairtune.metrics.unqover import unqover_scores

NAME = "qa_unqover"
# dataset -> (slots file, subject files, activities file)
DATASETS = {
    "gender": ("gender_noact", ("female", "male"), "occupation_rev1"),
    "religion": ("religion_noact", ("religion",), "biased_religion"),
    "ethnicity": ("ethnicity_noact", ("ethnicity",), "biased_ethnicity"),
}
_AUX = {"was", "were", "is", "are", "can", "could", "will", "would", "should", "must", "has been", "had been"}
_SINGULAR = {"were": "was", "are": "is", "have": "has"}


@dataclass
class Options:
    """Options of the `qa_unqover` suite.

    Args:
        data: UnQover's word_lists folder (slots/, nouns/subjects/, activities/).
        dataset: gender (female x male names, occupations), religion or ethnicity.
        max_subjects: subjects drawn per subject list (with the run's seed).
        max_attributes: attributes drawn (with the run's seed).
    """

    data: str | None = None
    dataset: str = "gender"
    max_subjects: int = 5
    max_attributes: int = 10


def _lines(path: Path) -> list[str]:
    """Non-empty, non-comment lines."""
    return [
        ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def read_subjects(path: Path) -> list[str]:
    """Subjects from `[subj] female | Mary` or `[subj] Muslim` lines."""
    out = []
    for ln in _lines(path):
        if not ln.startswith("[subj]"):
            continue
        text = ln.split("|", 1)[1] if "|" in ln else ln[len("[subj]") :]
        out.append(text.strip())
    return out


def read_attributes(path: Path) -> list[str]:
    """Person attributes (`[p_act] ...`) as plain text."""
    out = []
    for ln in _lines(path):
        if not ln.startswith("[p_act]"):
            continue
        out.append((ln.split("|", 1)[1] if "|" in ln else ln[len("[p_act]") :]).strip())
    return out


def read_slots(path: Path) -> list[tuple[str, str, str]]:
    """(context, question, negated question) templates."""
    out = []
    for ln in _lines(path):
        parts = [p.strip() for p in ln.split("\t")]
        if len(parts) >= 3 and "[subj1]" in parts[0]:
            out.append((parts[0], parts[1], parts[2]))
    return out


def singular(attribute: str) -> str:
    """Singular verb form for `[p_act-single]` slots (were -> was)."""
    first, _, rest = attribute.partition(" ")
    return f"{_SINGULAR.get(first, first)} {rest}".strip()


def negate(attribute: str) -> str:
    """Negated attribute: 'was an accountant' -> 'was never an accountant'; 'smelled ...' -> 'never smelled ...'."""
    first, _, rest = attribute.partition(" ")
    if first.lower() in _AUX:
        return f"{first} never {rest}".strip()
    return f"never {attribute}"


def fill_question(question: str, attribute: str) -> str:
    """Fill [p_act], [p_act-single] and their :neg forms."""
    q = question.replace("[p_act-single:neg]", negate(singular(attribute))).replace("[p_act:neg]", negate(attribute))
    return q.replace("[p_act-single]", singular(attribute)).replace("[p_act]", attribute)


def build_examples(
    root: Path, dataset: str, max_subjects: int, max_attributes: int, seed: int
) -> tuple[list[dict], dict[str, str]]:
    """Every (template, ordered subject pair, attribute, polarity) example, and each subject's group."""
    if dataset not in DATASETS:
        raise ValueError(f"qa_unqover: dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    slots_name, subject_files, act_name = DATASETS[dataset]
    rng = random.Random(seed)
    lists = [read_subjects(root / "nouns" / "subjects" / f) for f in subject_files]
    lists = [rng.sample(v, max_subjects) if len(v) > max_subjects else v for v in lists]
    group_of = {s: (subject_files[i] if len(subject_files) > 1 else s) for i, v in enumerate(lists) for s in v}
    if len(lists) == 2:
        pairs = [(a, b) for a in lists[0] for b in lists[1]]
    else:
        pairs = list(itertools.combinations(lists[0], 2))
    attrs = read_attributes(root / "activities" / act_name)
    attrs = rng.sample(attrs, max_attributes) if len(attrs) > max_attributes else attrs
    examples = []
    for tid, (ctx, q, q_neg) in enumerate(read_slots(root / "slots" / slots_name)):
        for a, b in pairs:
            for s1, s2 in ((a, b), (b, a)):
                context = ctx.replace("[subj1]", s1).replace("[subj2]", s2)
                for attr in attrs:
                    for negated, question in ((False, q), (True, q_neg)):
                        examples.append(
                            {
                                "context": context,
                                "question": fill_question(question, attr),
                                "subject1": s1,
                                "subject2": s2,
                                "template": tid,
                                "attribute": attr,
                                "negated": negated,
                            }
                        )
    if not examples:
        raise ValueError(f"no UnQover examples built from {root} for dataset {dataset!r}")
    return examples, group_of


def _subject_span(context: str, subject: str, other: str) -> tuple[int, int]:
    """First whole-word occurrence of `subject` that is not inside `other`."""
    for s, e in find_spans(context, subject):
        before = context[s - 1] if s > 0 else " "
        after = context[e] if e < len(context) else " "
        if not re.match(r"\w", before) and not re.match(r"\w", after):
            return s, e
    return find_spans(context, subject)[0]


def run(loaded: LoadedModel, options: Options, settings: EvalSettings) -> SuiteResult:
    """Score both subjects' spans for every question and compute position/attribute errors and mu/eta."""
    require_kind(loaded, NAME, ("qa",))
    root = resolve_data(options.data, "unqover/word_lists", NAME, "Get word_lists/ from github.com/allenai/unqover.")
    examples, group_of = build_examples(
        root, options.dataset, options.max_subjects, options.max_attributes, settings.seed
    )
    spans = [
        [
            _subject_span(e["context"], e["subject1"], e["subject2"]),
            _subject_span(e["context"], e["subject2"], e["subject1"]),
        ]
        for e in examples
    ]
    _, probs = span_logits(
        loaded.model,
        loaded.tokenizer,
        [e["question"] for e in examples],
        [e["context"] for e in examples],
        spans,
        batch_size=settings.batch_size,
        progress=settings.progress,
    )
    records = [{**e, "score1": float(p[0]), "score2": float(p[1])} for e, p in zip(examples, probs)]
    result = unqover_scores(records, group_of if options.dataset == "gender" else None)
    headline = {
        k: result[k] for k in ("unqover_position_error", "unqover_attribute_error", "unqover_mu", "unqover_eta")
    }
    breakdown = result.get("per_group") or {s: {"gamma": v["gamma"]} for s, v in result["per_subject"].items()}
    return SuiteResult(
        suite=NAME,
        metrics=headline,
        breakdown=breakdown,
        breakdown_label="group" if options.dataset == "gender" else "subject",
        plot_columns=["gamma"],
        details={
            "n_examples": len(examples),
            "n_quadruples": result["n_quadruples"],
            "dataset": options.dataset,
            "per_subject": result["per_subject"],
            "mean_span_probability": float(np.mean([p for pr in probs for p in pr])),
        },
        notes=[
            "Position/attribute errors: 0 is ideal. mu: mean over subjects of the strongest |bias| over attributes; eta: how consistently the sign holds. gamma > 0: the subject is chosen more for the attributes than for their negations. No bootstrap intervals: examples are not independent draws."
        ],
    )
