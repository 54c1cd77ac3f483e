"""`subgroup_auc` suite: subgroup, BPSN and BNSP AUC per identity term (Borkan et al. 2019) and per-group calibration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairtune.evaluation.base import EvalSettings, SuiteResult
from fairtune.evaluation.data_paths import resolve_data
from fairtune.evaluation.models import LoadedModel, require_kind
from fairtune.evaluation.predict import classifier_probs
from fairtune.evaluation.tables import load_table, require_columns
from fairtune.metrics.bootstrap import bootstrap_intervals
from fairtune.metrics.subgroup_auc import subgroup_auc_report

NAME = "subgroup_auc"
POSITIVE_VALUES = {"1", "true", "bad", "toxic", "yes"}


@dataclass
class Options:
    """Options of the `subgroup_auc` suite.

    Args:
        data: identity-term data: a csv (e.g. bias_madlibs_77k.csv) or the wiki_toxicity_identity folder.
        predictions: instead of a model, a file with `score` (positive probability), the label and text columns.
        text_column, label_column: column names (auto-detected among Text/text/comment/phrase, Label/label/toxicity/toxic).
        identity_terms: identity terms to measure; default: bias_madlibs_data/adjectives_people.txt next to the data.
        positive_class: index of the positive (toxic) class in the model's output.
        max_examples: draw N rows with the run's seed (the 77k file is slow on CPU).
        min_count: skip terms with fewer rows.
    """

    data: str | None = None
    predictions: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    identity_terms: list[str] | None = None
    positive_class: int = 1
    max_examples: int | None = None
    min_count: int = 20


def _pick(df: Any, given: str | None, candidates: tuple[str, ...], what: str) -> str:
    """The given column, or the first candidate present."""
    if given:
        require_columns(df, [given], "data")
        return given
    for c in candidates:
        if c in df.columns:
            return c
    raise ValueError(f"cannot find the {what} column among {list(df.columns)}; set `{what}_column`")


def binary_labels(values: Any) -> np.ndarray:
    """0/1 labels from ints, booleans or names such as BAD/NOT_BAD and toxic/nontoxic."""
    return np.asarray([1 if str(v).strip().lower() in POSITIVE_VALUES or v is True else 0 for v in values], dtype=int)


def term_memberships(texts: list[str], terms: list[str]) -> dict[str, np.ndarray]:
    """Boolean mask per identity term: rows where the term appears as a whole word (case-insensitive)."""
    out = {}
    for term in terms:
        pattern = re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.IGNORECASE)
        out[term] = np.asarray([bool(pattern.search(t)) for t in texts])
    return out


def _default_terms(path: Path) -> list[str]:
    """adjectives_people.txt shipped beside the madlibs csv."""
    base = path if path.is_dir() else path.parent
    terms_file = base / "bias_madlibs_data" / "adjectives_people.txt"
    if not terms_file.is_file():
        raise ValueError(f"no identity_terms given and {terms_file} does not exist; set `identity_terms`")
    return [t.strip() for t in terms_file.read_text(encoding="utf-8").splitlines() if t.strip()]


def run(loaded: LoadedModel | None, options: Options, settings: EvalSettings) -> SuiteResult:
    """Score identity-term data and compute per-term AUCs and calibration with bootstrap intervals for summaries."""
    source = options.predictions or str(
        resolve_data(
            options.data,
            "wiki_toxicity_identity/bias_madlibs_77k.csv",
            NAME,
            "Get bias_madlibs_77k.csv from github.com/conversationai/unintended-ml-bias-analysis.",
        )
    )
    path = Path(source)
    if path.is_dir():
        path = path / "bias_madlibs_77k.csv"
    df = load_table(str(path))
    text_col = _pick(df, options.text_column, ("Text", "text", "comment", "phrase"), "text")
    label_col = _pick(df, options.label_column, ("Label", "label", "toxicity", "toxic"), "label")
    if options.max_examples is not None and len(df) > options.max_examples:
        df = df.sample(n=options.max_examples, random_state=settings.seed).reset_index(drop=True)
    texts = df[text_col].astype(str).tolist()
    labels = binary_labels(df[label_col])
    if options.predictions:
        require_columns(df, ["score"], f"predictions file {options.predictions}")
        scores = df["score"].astype(float).to_numpy()
    else:
        if loaded is None:
            raise ValueError("suite 'subgroup_auc' needs a model or a `predictions` file")
        require_kind(loaded, NAME, ("classifier",))
        scores = classifier_probs(
            loaded.model, loaded.tokenizer, texts, batch_size=settings.batch_size, progress=settings.progress
        )[:, options.positive_class]
    terms = options.identity_terms or _default_terms(Path(options.data) if options.data else path)
    members = term_memberships(texts, terms)
    report = subgroup_auc_report(labels, scores, members, min_count=options.min_count)
    headline_keys = (
        "subgroup_auc_min",
        "bpsn_auc_min",
        "bnsp_auc_min",
        "final_bias_auc",
        "overall_auc",
        "calibration_gap_max",
    )
    member_matrix = (
        np.stack([members[t] for t in report["per_term"]], axis=1)
        if report["per_term"]
        else np.zeros((len(texts), 0), bool)
    )
    kept = list(report["per_term"])

    def for_ci(y, s, mm):
        r = subgroup_auc_report(y, s, {t: mm[:, i] for i, t in enumerate(kept)}, min_count=1)
        return {k: r[k] for k in headline_keys}

    intervals = bootstrap_intervals(
        for_ci,
        [labels, scores, member_matrix],
        n_resamples=min(settings.n_bootstrap, 200),
        confidence=settings.confidence,
        seed=settings.seed,
    )
    return SuiteResult(
        suite=NAME,
        metrics={k: report[k] for k in headline_keys},
        intervals=intervals,
        breakdown=report["per_term"],
        breakdown_label="identity term",
        plot_columns=["subgroup_auc", "bpsn_auc", "bnsp_auc"],
        details={"n_examples": len(texts), "data": str(path), "terms_skipped": sorted(set(terms) - set(kept))},
        notes=[
            "AUCs: 1 is ideal; a low BPSN AUC means non-toxic mentions of the term score as toxic. Summary intervals use at most 200 resamples."
        ],
    )
