"""RedditBias (Barikeri et al. 2021) as a binary classification dataset with a `group` column.

RedditBias holds real Reddit comments that mention a target group, annotated biased (1) / not biased (0), one CSV
file per group. fairtune does not ship it: point `data_dir` at a copy (default `../shared/data/redditbias`,
relative to the working directory), or call `load_redditbias(path)`.

Cleaning rules, applied in this order; every row that is dropped or repaired is counted in `CleaningReport`:

1. Encoding: a file that is not valid UTF-8 (the Jewish file) is read as cp1252 (`repaired: cp1252_rows`).
2. Header: a trailing unnamed column (the female file) is removed (`repaired: trailing_empty_column_rows`); a value
   in it (one row of the female file holds a lone `0`) is ignored and counted (`repaired:
   unnamed_column_value_ignored`), since the named columns of that row are complete.
3. Ids: a file without an `id` column (female) or a row with an empty id (LGBTQ) gets `<group>-<row number>`
   (`repaired: missing_id_column_rows`, `repaired: empty_id_rows`).
4. Labels (`bias_sent`): `0`/`1` are kept; empty means "not annotated" (`dropped: not_annotated`); any other value
   (`2`, `biased?`, `re-state`, `question`, ...) is a stray label (`dropped: stray_label`, per value in
   `stray_labels`).
5. Text (`comment`): empty after stripping whitespace is dropped (`dropped: empty_text`).
6. Duplicates, on whitespace-normalised text: a comment in two group files mentions both groups, so its group is
   ambiguous and every copy is dropped (`dropped: in_several_groups`); a repeat within one file with the same
   label keeps the first copy (`dropped: duplicate`); repeats with conflicting labels are all dropped
   (`dropped: duplicate_conflicting_labels`).

The split is a fixed, seeded, group x label-stratified train / validation / test split: in every (group, label)
cell the rows (sorted by id) are shuffled with `seed` and cut into the fractions, so each split has every group's
base rate and the same seed gives the same split on any machine.

`dixon_balance` adds Dixon et al. (2018)'s non-toxic Wikipedia sentences that mention a group's identity terms, as
non-biased rows, until that group's biased rate in training matches the overall rate (the way Dixon et al.
balanced identity terms in the Wikipedia Talk training set).
"""

from __future__ import annotations

import csv
import io
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "../shared/data/redditbias"
FILES: dict[str, str] = {
    "female": "reddit_comments_gender_female_processed_phrase_annotated.csv",
    "lgbtq": "reddit_comments_orientation_lgbtq_processed_phrase_annotated.csv",
    "black": "reddit_comments_race_black_processed_phrase_annotated.csv",
    "jewish": "reddit_comments_religion1_jews_processed_phrase_annotated.csv",
    "muslim": "reddit_comments_religion2_muslims_processed_phrase_annotated.csv",
}
GROUPS: tuple[str, ...] = tuple(FILES)
TEXT_COLUMN, LABEL_COLUMN = "comment", "bias_sent"
DROP_REASONS = (
    "not_annotated",
    "stray_label",
    "empty_text",
    "in_several_groups",
    "duplicate",
    "duplicate_conflicting_labels",
)
REPAIRS = (
    "cp1252_rows",
    "trailing_empty_column_rows",
    "unnamed_column_value_ignored",
    "missing_id_column_rows",
    "empty_id_rows",
)

# Identity terms of each group in lower case (RedditBias comments are lower-cased), used to pick Dixon et al.'s
# Wikipedia sentences that mention a group. Whole words only.
IDENTITY_TERMS: dict[str, tuple[str, ...]] = {
    "female": ("woman", "women", "girl", "girls", "mother", "mothers", "wife", "wives", "daughter", "daughters",
               "sister", "sisters", "lady", "ladies", "female", "females", "aunt", "aunts"),
    "lgbtq": ("gay", "gays", "lesbian", "lesbians", "homosexual", "homosexuals", "bisexual", "bisexuals",
              "transgender", "trans", "queer", "lgbt", "lgbtq"),
    "black": ("black", "blacks", "african", "africans", "african-american", "african-americans"),
    "jewish": ("jew", "jews", "jewish", "judaism", "rabbi", "rabbis", "synagogue", "synagogues"),
    "muslim": ("muslim", "muslims", "islam", "islamic", "imam", "imams", "mosque", "mosques", "quran", "arab",
               "arabs"),
}  # fmt: skip


@dataclass
class CleaningReport:
    """What the loader did to the raw files: rows read, kept, dropped (per reason) and repaired, per group."""

    read: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # reason -> group -> rows
    repaired: dict[str, dict[str, int]] = field(default_factory=dict)  # repair -> group -> rows
    stray_labels: dict[str, int] = field(default_factory=dict)  # raw value -> rows
    encodings: dict[str, str] = field(default_factory=dict)  # group -> encoding the file was read with
    split_sizes: dict[str, int] = field(default_factory=dict)
    split_counts: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # split -> group -> [n0, n1]

    def drop(self, reason: str, group: str, n: int = 1) -> None:
        """Count `n` rows of `group` dropped for `reason`."""
        cell = self.dropped.setdefault(reason, {})
        cell[group] = cell.get(group, 0) + n

    def repair(self, what: str, group: str, n: int = 1) -> None:
        """Count `n` rows of `group` repaired by `what`."""
        cell = self.repaired.setdefault(what, {})
        cell[group] = cell.get(group, 0) + n

    def total_dropped(self) -> dict[str, int]:
        """Rows dropped per reason, over all groups (every reason listed, 0 when none)."""
        return {r: sum(self.dropped.get(r, {}).values()) for r in DROP_REASONS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view (for benchmark outputs and logs)."""
        return {
            "read": self.read,
            "kept": self.kept,
            "dropped": self.dropped,
            "dropped_total": self.total_dropped(),
            "repaired": self.repaired,
            "stray_labels": self.stray_labels,
            "encodings": self.encodings,
            "split_sizes": self.split_sizes,
            "split_counts": self.split_counts,
        }

    def markdown(self) -> str:
        """A table of rows per group: read, each drop reason, kept; then the repairs and stray values."""
        head = ["group", "read", *DROP_REASONS, "kept"]
        lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for g in [*self.read, "total"]:
            if g == "total":
                cells = [str(sum(self.read.values()))]
                cells += [str(v) for v in self.total_dropped().values()]
                cells.append(str(sum(self.kept.values())))
            else:
                cells = [str(self.read[g]), *[str(self.dropped.get(r, {}).get(g, 0)) for r in DROP_REASONS]]
                cells.append(str(self.kept.get(g, 0)))
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        rep = "; ".join(f"{k}: {sum(v.values())} ({', '.join(f'{g} {n}' for g, n in v.items())})"
                        for k, v in self.repaired.items())  # fmt: skip
        lines += ["", f"Repaired: {rep or 'nothing'}. Stray label values: {self.stray_labels or 'none'}."]
        return "\n".join(lines)


def _decode(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "cp1252"


def _norm(text: str) -> str:
    return " ".join(text.split())


def read_group_file(path: Path, group: str, report: CleaningReport) -> list[dict[str, Any]]:
    """Rows of one group file after rules 1-5 (encoding, header, ids, labels, empty text), with `report` updated.

    Raises ValueError naming the file when it lacks the comment or label column.
    """
    text, encoding = _decode(path.read_bytes())
    report.encodings[group] = encoding
    table = list(csv.reader(io.StringIO(text, newline="")))
    if not table:
        raise ValueError(f"RedditBias file {path} is empty; re-copy it from the source (see SOURCE.md).")
    header, body = [h.strip() for h in table[0]], [r for r in table[1:] if r]
    for col in (TEXT_COLUMN, LABEL_COLUMN):
        if col not in header:
            raise ValueError(
                f"RedditBias file {path}: no {col!r} column (columns: {header}); this is not a RedditBias "
                "`*_phrase_annotated.csv` file. Point `data_dir` at the folder holding the five annotated files."
            )
    report.read[group] = len(body)
    if encoding != "utf-8":
        report.repair("cp1252_rows", group, len(body))
    unnamed = [i for i, h in enumerate(header) if h == ""]
    if unnamed:
        report.repair("trailing_empty_column_rows", group, len(body))
        stray = sum(1 for row in body if any(i < len(row) and row[i].strip() for i in unnamed))
        if stray:  # the female file's row 2408 holds a lone `0` there; the named columns are complete
            report.repair("unnamed_column_value_ignored", group, stray)
    has_id = "id" in header
    if not has_id:
        report.repair("missing_id_column_rows", group, len(body))
    idx = {h: i for i, h in enumerate(header) if h}
    rows = []
    for n, row in enumerate(body, 2):

        def get(col: str, row=row) -> str:
            i = idx.get(col)
            return row[i] if i is not None and i < len(row) else ""

        rid = get("id").strip() if has_id else ""
        if not rid:
            if has_id:
                report.repair("empty_id_rows", group)
            rid = f"{group}-{n}"
        label = get(LABEL_COLUMN).strip()
        if label == "":
            report.drop("not_annotated", group)
            continue
        if label not in ("0", "1"):
            report.drop("stray_label", group)
            report.stray_labels[label] = report.stray_labels.get(label, 0) + 1
            continue
        comment = get(TEXT_COLUMN).strip()
        if not comment:
            report.drop("empty_text", group)
            continue
        rows.append({"id": rid, "text": comment, "label": int(label), "group": group, "row": n})
    return rows


def deduplicate(rows: list[dict[str, Any]], report: CleaningReport) -> list[dict[str, Any]]:
    """Rule 6: drop comments found in several groups, repeats within a group, and conflicting repeats."""
    by_text: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_text.setdefault(_norm(r["text"]), []).append(r)
    keep: set[int] = set()
    for copies in by_text.values():
        if len({c["group"] for c in copies}) > 1:
            for c in copies:
                report.drop("in_several_groups", c["group"])
            continue
        if len({c["label"] for c in copies}) > 1:
            for c in copies:
                report.drop("duplicate_conflicting_labels", c["group"])
            continue
        keep.add(id(copies[0]))
        for c in copies[1:]:
            report.drop("duplicate", c["group"])
    return [r for r in rows if id(r) in keep]


def stratified_split(
    rows: list[dict[str, Any]], validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Group x label-stratified train / validation / test split, seeded and independent of row order."""
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise ValueError(
            f"RedditBias split: validation_fraction={validation_fraction} and test_fraction={test_fraction} must "
            "each be in (0, 1) and sum to less than 1."
        )
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["group"], r["label"]), []).append(r)
    out: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for key in sorted(cells):
        cell = sorted(cells[key], key=lambda r: (r["id"], r["row"]))
        random.Random(f"{seed}|{key[0]}|{key[1]}").shuffle(cell)
        n_test, n_val = round(len(cell) * test_fraction), round(len(cell) * validation_fraction)
        out["test"] += cell[:n_test]
        out["validation"] += cell[n_test : n_test + n_val]
        out["train"] += cell[n_test + n_val :]
    for split, split_rows in out.items():
        random.Random(f"{seed}|{split}").shuffle(split_rows)
    return out


def load_redditbias_rows(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    *,
    seed: int = 42,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    groups: Iterable[str] = GROUPS,
) -> tuple[dict[str, list[dict[str, Any]]], CleaningReport]:
    """The cleaned, split rows (`id`, `text`, `label` 1 = biased, `group`) and the cleaning report.

    Raises FileNotFoundError naming `data_dir` and the missing file, ValueError on an unknown group.
    """
    path = Path(data_dir)
    groups = list(groups)
    unknown = [g for g in groups if g not in FILES]
    if unknown:
        raise ValueError(f"RedditBias groups {unknown} are unknown; choose from {list(FILES)}.")
    if not path.is_dir():
        raise FileNotFoundError(
            f"`data_dir`: {str(path)!r} is not a directory (resolved from {Path.cwd()}). RedditBias is not shipped "
            "with fairtune: set `data_dir` to a folder holding the five `*_phrase_annotated.csv` files of "
            "github.com/umanlp/RedditBias."
        )
    report = CleaningReport()
    rows: list[dict[str, Any]] = []
    for g in groups:
        f = path / FILES[g]
        if not f.is_file():
            raise FileNotFoundError(f"`data_dir`: {str(path)!r} has no {FILES[g]} (group {g}); copy it there.")
        rows += read_group_file(f, g, report)
    rows = deduplicate(rows, report)
    for g in groups:
        report.kept[g] = sum(1 for r in rows if r["group"] == g)
    splits = stratified_split(rows, validation_fraction, test_fraction, seed)
    for split, split_rows in splits.items():
        report.split_sizes[split] = len(split_rows)
        counts = {g: [0, 0] for g in groups}
        for r in split_rows:
            counts[r["group"]][r["label"]] += 1
        report.split_counts[split] = counts
    for split_rows in splits.values():
        for r in split_rows:
            del r["row"]
    return splits, report


def load_redditbias(data_dir: str | Path = DEFAULT_DATA_DIR, **kwargs: Any):
    """RedditBias as a `datasets.DatasetDict` (train / validation / test) and its `CleaningReport`.

    Columns: `id`, `text`, `label` (1 = biased, 0 = not biased), `group` (female, lgbtq, black, jewish, muslim).
    Keyword arguments go to `load_redditbias_rows` (seed, fractions, groups).
    """
    from datasets import Dataset, DatasetDict

    splits, report = load_redditbias_rows(data_dir, **kwargs)
    logger.info("RedditBias: %s rows kept, dropped %s", sum(report.kept.values()), report.total_dropped())
    return DatasetDict({k: Dataset.from_list(v) for k, v in splits.items()}), report


def _term_pattern(terms: Iterable[str]) -> re.Pattern:
    words = sorted({t.lower() for t in terms}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w-])")


def mentioned_groups(text: str, terms: dict[str, tuple[str, ...]] = IDENTITY_TERMS) -> list[str]:
    """The groups whose identity terms (whole words, case-insensitive) occur in `text`."""
    low = text.lower()
    return [g for g, t in terms.items() if _term_pattern(t).search(low)]


def read_wiki_augmentation(path: str | Path, split: str = "train") -> list[str]:
    """Sentences of Dixon et al.'s `toxicity_debiasing_data.tsv` in `split` (all labelled non-toxic there)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Dixon et al. augmentation file {str(path)!r} does not exist; pass the path of "
            "`toxicity_debiasing_data.tsv` (conversationai/unintended-ml-bias-analysis, data/)."
        )
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""), delimiter="\t")
    if not reader.fieldnames or "comment" not in reader.fieldnames:
        raise ValueError(f"{path}: no `comment` column (columns: {reader.fieldnames}); is this the Dixon tsv?")
    out = []
    for row in reader:
        if str(row.get("is_toxic", "False")).strip().lower() not in ("false", "0"):
            continue
        if split and row.get("split") != split:
            continue
        text = _norm(row["comment"] or "")
        if text:
            out.append(text)
    return out


def dixon_balance(
    train: list[dict[str, Any]],
    sentences: list[str],
    *,
    seed: int = 0,
    terms: dict[str, tuple[str, ...]] = IDENTITY_TERMS,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Training rows plus non-biased sentences per group so that each group's biased rate falls to the overall rate.

    A sentence can serve every group whose terms it mentions; each sentence is used once, groups furthest above
    the overall rate choose first, preferring sentences that mention that group alone (Dixon et al.'s sentences
    are mostly about sexual orientation, so few mention only women or Muslims). Groups at or below the overall
    rate get nothing (Dixon et al. add only non-toxic text); a group short of sentences gets all it can. Added rows
    are lower-cased like RedditBias and carry `source: wiki_dixon`. Returns (rows, added per group); the input is
    not modified.
    """
    n = len(train)
    if n == 0:
        raise ValueError("dixon_balance: the training rows are empty.")
    rate = sum(r["label"] for r in train) / n
    hits = [(s.lower(), mentioned_groups(s, terms)) for s in sentences]
    rng = random.Random(seed)
    rng.shuffle(hits)
    need: dict[str, int] = {}
    for g in terms:
        pos = sum(1 for r in train if r["group"] == g and r["label"] == 1)
        tot = sum(1 for r in train if r["group"] == g)
        need[g] = max(0, round(pos / rate - tot)) if rate > 0 and tot else 0
    out = [dict(r, source=r.get("source", "redditbias")) for r in train]
    added: dict[str, int] = {g: 0 for g in terms}
    used: set[int] = set()
    for g in sorted(terms, key=lambda g: -need[g]):
        pool = [i for i, (_, h) in enumerate(hits) if g in h and i not in used]
        pool.sort(key=lambda i: len(hits[i][1]) > 1)  # single-group sentences first (stable: shuffled order)
        for i in pool[: need[g]]:
            used.add(i)
            out.append(
                {"id": f"wiki-{g}-{added[g]}", "text": hits[i][0], "label": 0, "group": g, "source": "wiki_dixon"}
            )
            added[g] += 1
    rng.shuffle(out)
    return out, added
