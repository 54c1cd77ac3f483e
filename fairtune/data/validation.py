"""Validation at the door: data files and rows checked before any model is loaded.

Two layers, both raising `FairtuneError` with the file, line or row, the field and the fix:

- `check_data_file(path, field)`: the bytes of one local file. Empty files, a non-UTF-8 byte (file, line, byte
  offset; a latin-1/cp1252 file is named as such, with the command that re-encodes it), a malformed JSON/JSONL line
  (file:line and the JSON error), a CSV row with the wrong number of fields, a parquet file that is not parquet.
- `validate_raw_datasets(raw, data_args, task)`: the rows of every split, per task. Classification: text and label
  columns present and filled, groups scalar. QA: every answer text equals
  `context[answer_start:answer_start+len(text)]` (an answer off by a few characters, one that is not in its context
  and an `answer_start` past the context are each named, with the row and the fix). NER: one tag per token and a
  known tag scheme (IOB2, or IOBES/BILOU); IOB1 (an entity starting with `I-`) is converted to IOB2 with a warning,
  an unknown prefix is refused.

Nothing here drops or repairs a row silently: the only change made to data is the logged IOB1 -> IOB2 conversion.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fairtune.data.squad import answer_span_problem, raw_answers
from fairtune.errors import FairtuneError

logger = logging.getLogger(__name__)

#: how many offending rows an error message lists before "and N more"
MAX_LISTED = 3
#: NER tag prefixes of the schemes fairtune trains on: IOB2 (B, I) and IOBES/BILOU (E, S, L, U)
KNOWN_PREFIXES = ("B", "I", "E", "S", "L", "U")
SPLIT_FIELDS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


# ---------------------------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------------------------
def _line_of(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line number and 0-based column (in bytes) of a byte offset."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start


def _encoding_error(path: Path, field: str, data: bytes, err: UnicodeDecodeError) -> FairtuneError:
    line, col = _line_of(data, err.start)
    byte = data[err.start : err.start + 1].hex()
    guess = ""
    try:
        data.decode("cp1252")
        guess = " The file looks latin-1/cp1252 encoded (as Excel saves CSV)."
    except UnicodeDecodeError:
        pass
    return FairtuneError(
        f"`{field}`: {path} is not UTF-8: byte 0x{byte} at line {line}, column {col} (byte offset {err.start})."
        f"{guess} Re-encode it: `iconv -f cp1252 -t utf-8 {path} > {path.stem}.utf8{path.suffix}`."
    )


def read_text_checked(path: str | Path, field: str) -> str:
    """The file's text, decoded as UTF-8 (a BOM is allowed), or a `FairtuneError` naming the line and byte."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as err:
        shift = 3 if data.startswith(codecs.BOM_UTF8) else 0
        err.start += shift
        raise _encoding_error(path, field, data, err) from None


def _check_jsonl(path: Path, field: str, text: str) -> None:
    rows = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise FairtuneError(
                f"`{field}`: {path}:{lineno}: malformed JSON line ({err.msg} at column {err.colno}); each line of a "
                "jsonl file must be one JSON object. Fix or remove that line."
            ) from None
        if not isinstance(value, dict):
            raise FairtuneError(
                f"`{field}`: {path}:{lineno}: a jsonl line must be a JSON object (one row), got "
                f"{type(value).__name__}."
            )
        rows += 1
    if rows == 0:
        raise FairtuneError(f"`{field}`: {path} has no rows (only blank lines).")


def _check_json(path: Path, field: str, text: str) -> None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        first = text.lstrip()[:1]
        if first == "{" and "\n" in text.strip():  # JSON Lines in a .json file, which datasets also reads
            try:
                json.loads(text.strip().splitlines()[0])
            except json.JSONDecodeError:
                pass
            else:
                _check_jsonl(path, field, text)
                return
        raise FairtuneError(
            f"`{field}`: {path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno}). A json data file "
            "is a list of row objects, {'data': [rows]}, or one row object per line."
        ) from None
    if isinstance(data, list):
        if not data:
            raise FairtuneError(f"`{field}`: {path} is an empty JSON list: no rows.")
        bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
        if bad is not None:
            raise FairtuneError(
                f"`{field}`: {path}: item {bad} of the JSON list is {type(data[bad]).__name__}, not a row object."
            )
    elif isinstance(data, dict) and isinstance(data.get("data"), list) and not data["data"]:
        raise FairtuneError(f"`{field}`: {path} has an empty `data` list: no rows.")
    elif not isinstance(data, dict):
        raise FairtuneError(
            f"`{field}`: {path} holds a JSON {type(data).__name__}; expected rows (a list of objects)."
        )


def _check_csv(path: Path, field: str, text: str) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:  # pragma: no cover - empty text is caught before
        raise FairtuneError(f"`{field}`: {path} is empty.") from None
    except csv.Error as err:
        raise FairtuneError(f"`{field}`: {path}:1: unreadable CSV header ({err}).") from None
    if not any(h.strip() for h in header):
        raise FairtuneError(f"`{field}`: {path}:1: the first line must be the CSV header (column names).")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FairtuneError(f"`{field}`: {path}:1: duplicate column name(s) {dupes} in the CSV header.")
    rows = 0
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise FairtuneError(
                    f"`{field}`: {path}:{reader.line_num}: {len(row)} fields but the header has {len(header)} "
                    f"({', '.join(header)}); quote values that contain commas."
                )
            rows += 1
    except csv.Error as err:
        raise FairtuneError(f"`{field}`: {path}:{reader.line_num}: unreadable CSV ({err}).") from None
    if rows == 0:
        raise FairtuneError(f"`{field}`: {path} has a header but no rows.")


def check_data_file(path: str | Path, field: str) -> None:
    """Check one local data file before `datasets` reads it; raise `FairtuneError` naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise FairtuneError(f"`{field}`: {str(path)!r} does not exist.")
    if path.is_dir():
        raise FairtuneError(f"`{field}`: {path} is a directory; name a csv, json, jsonl or parquet file.")
    if path.stat().st_size == 0:
        raise FairtuneError(f"`{field}`: {path} is empty (0 bytes).")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(-4, 2) if path.stat().st_size >= 8 else None
            tail = fh.read(4)
        if head != b"PAR1" or tail != b"PAR1":
            raise FairtuneError(f"`{field}`: {path} is not a parquet file (no PAR1 magic bytes); check its format.")
        return
    text = read_text_checked(path, field)
    if not text.strip():
        raise FairtuneError(f"`{field}`: {path} is empty (only whitespace).")
    if suffix == ".jsonl":
        _check_jsonl(path, field, text)
    elif suffix == ".json":
        _check_json(path, field, text)
    elif suffix == ".csv":
        _check_csv(path, field, text)


# ---------------------------------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _source(split: str, data_args) -> str:
    """How an error names a split: its file (`train_file` x.jsonl) or the Hub dataset."""
    field = SPLIT_FIELDS.get(split)
    path = getattr(data_args, field, None) if field else None
    if path:
        return f"`{field}` {path}"
    name = getattr(data_args, "dataset_name", None)
    return f"the {split} split of `dataset_name` {name!r}" if name else f"the {split} split"


def _listed(rows: Sequence[int], what: Sequence[str] | None = None) -> str:
    """'row 3' / 'rows 3, 7, 9 and 4 more' (with a detail per row when given)."""
    shown = [f"{r}" + (f" ({what[i]})" if what else "") for i, r in enumerate(rows[:MAX_LISTED])]
    more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(shown) + more


def _rows(ds, columns: Sequence[str], batch_size: int = 4096):
    """The rows of `columns` as dicts, read in batches (row-by-row access of a Dataset is slow)."""
    for batch in ds.select_columns(list(columns)).iter(batch_size=batch_size):
        yield from (dict(zip(batch, values)) for values in zip(*batch.values()))


def _require_columns(ds, columns: Sequence[str], where: str, hint: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise FairtuneError(f"{where}: column(s) {missing} not found (columns: {ds.column_names}). {hint}")


def validate_classification(ds, split: str, data_args, where: str) -> None:
    """Text columns present and filled; labels filled (train: every row; evaluation: all rows or none)."""
    text_cols = {
        "text_column": data_args.text_column,
        "text_pair_column": getattr(data_args, "text_pair_column", None),
    }
    for name, col in text_cols.items():
        if col and col not in ds.column_names:
            raise FairtuneError(f"{where}: `{name}` {col!r} not found (columns: {ds.column_names}); set `{name}`.")
    for col in [c for c in text_cols.values() if c]:
        bad = [i for i, v in enumerate(ds[col]) if not isinstance(v, str) or not v.strip()]
        if bad:
            raise FairtuneError(
                f"{where}: `text_column` {col!r} is empty or not text in {_listed(bad)}; fill or drop those rows."
            )
    label = data_args.label_column
    if label not in ds.column_names:
        if split == "train":
            raise FairtuneError(
                f"{where}: `label_column` {label!r} not found (columns: {ds.column_names}); set `label_column`."
            )
        return
    values = list(ds[label])
    bad = [i for i, v in enumerate(values) if _missing(v)]
    if bad and (split == "train" or len(bad) < len(values)):
        raise FairtuneError(
            f"{where}: `label_column` {label!r} is missing (empty, null or NaN) in {_listed(bad)}; label or drop "
            "those rows (nothing is trained on an unlabelled row)."
        )
    bad = [i for i, v in enumerate(values) if isinstance(v, (list, dict))]
    if bad:
        raise FairtuneError(f"{where}: `label_column` {label!r} holds a list or object in {_listed(bad)}; one label.")


def validate_groups(ds, data_args, where: str, training_args=None, split: str = "train") -> None:
    """Group values are scalars; with a group objective on, the training split has two groups or more."""
    for col in data_args.group_columns:
        if col not in ds.column_names:
            continue  # encode_datasets decides (an error with a group objective, a warning without)
        bad = [i for i, v in enumerate(ds[col]) if isinstance(v, (list, dict))]
        if bad:
            raise FairtuneError(
                f"{where}: `group_column` {col!r} holds a list or object in {_listed(bad)}; one group value per row."
            )
    if training_args is None or split != "train" or not getattr(training_args, "uses_group_objective", False):
        return
    if getattr(data_args, "group_from_lexicon", None) or getattr(data_args, "cda", "none") != "none":
        return  # groups are made (lexicon) or swapped (CDA) after this check
    cols = [c for c in data_args.group_columns if c in ds.column_names]
    if cols and len(cols) == len(data_args.group_columns):
        groups = {
            tuple(str(r[c]) for c in cols) for r in ds.select_columns(cols) if not any(_missing(r[c]) for c in cols)
        }
        if len(groups) < 2:
            raise FairtuneError(
                f"{where}: `group_column` {cols if len(cols) > 1 else cols[0]!r} has "
                f"{'one group ' + repr('|'.join(next(iter(groups)))) if groups else 'no group values'} in the "
                "training data; group objectives and the adversary need two groups or more. Check `group_column`."
            )


def validate_qa(ds, where: str) -> None:
    """SQuAD rows: string context and question, well-formed `answers`, and every answer span matching its context."""
    _require_columns(
        ds,
        ("context", "question", "answers"),
        where,
        "QA rows are SQuAD-style (id, question, context, answers: {text: [...], answer_start: [...]}); nested "
        "SQuAD JSON must be flattened first (fairtune.tasks.qa.squad_to_jsonl).",
    )
    problems: list[tuple[int, str]] = []
    ids = ds["id"] if "id" in ds.column_names else None
    for i, row in enumerate(_rows(ds, ["context", "question", "answers"])):
        context, question = row["context"], row["question"]
        if not isinstance(context, str) or not context.strip():
            problems.append((i, "`context` is empty or not text"))
            continue
        if not isinstance(question, str) or not question.strip():
            problems.append((i, "`question` is empty or not text"))
            continue
        parsed = raw_answers(row["answers"])
        if parsed is None:
            problems.append((i, f"`answers` must be {{'text': [...], 'answer_start': [...]}}, got {row['answers']!r}"))
            continue
        texts, starts = parsed
        if len(texts) != len(starts):
            problems.append((i, f"`answers` has {len(texts)} texts but {len(starts)} answer_start values"))
            continue
        for text, start in zip(texts, starts):
            if not isinstance(text, str) or not text:
                problems.append((i, f"answer text {text!r} is empty; a no-answer row has `text: []`"))
                break
            if isinstance(start, bool) or not isinstance(start, int) or start < 0:
                problems.append((i, f"answer_start {start!r} must be a character offset >= 0"))
                break
            problem = answer_span_problem(context, text, start)
            if problem:
                problems.append((i, problem))
                break
    if problems:
        first_row, first = problems[0]
        label = f"row {first_row}" + (f" (id {ids[first_row]!r})" if ids is not None else "")
        others = f" ({len(problems)} rows like this: {_listed([r for r, _ in problems])})" if len(problems) > 1 else ""
        raise FairtuneError(
            f"{where}: {label}: {first}{others}. Every answer must satisfy "
            "context[answer_start:answer_start+len(text)] == text; nothing was trained."
        )


def _tag_names(ds, data_args, where: str) -> list[str] | None:
    """Names for int tags: `label_list`, else a ClassLabel feature; None when the tags are strings."""
    configured = list(getattr(data_args, "label_list", None) or [])
    inner = getattr(ds.features.get("ner_tags"), "feature", None)
    return configured or list(getattr(inner, "names", None) or []) or None


def _entity_starts_with_i(tags: Sequence[str]) -> list[int]:
    """Positions where an `I-X` tag starts an entity (first token, after O, or after another type): IOB1."""
    from fairtune.metrics.tags import split_tag

    out, prev = [], ("O", "")
    for k, tag in enumerate(tags):
        prefix, etype = split_tag(tag)
        if prefix == "I" and (prev[0] == "O" or prev[1] != etype):
            out.append(k)
        prev = (prefix, etype)
    return out


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB2 tags from IOB1 (or repairable IOB2): an `I-X` that starts an entity becomes `B-X`."""
    starts = set(_entity_starts_with_i(tags))
    return [f"B{tag[1:]}" if k in starts else tag for k, tag in enumerate(tags)]


def _check_tag(tag: Any) -> bool:
    """Whether a tag string is O or a known prefix, a separator and an entity type (B-PER, I_loc, S-ORG)."""
    if not isinstance(tag, str):
        return False
    if tag == "O":
        return True
    return len(tag) > 2 and tag[0] in KNOWN_PREFIXES and tag[1] in "-_"


def validate_ner(ds, data_args, where: str):
    """One tag per token, a known scheme; returns the split with IOB1 converted to IOB2 (logged), else unchanged."""
    _require_columns(
        ds, ("tokens", "ner_tags"), where, "NER rows need `tokens` (list of words) and `ner_tags` (one tag per word)."
    )
    names = _tag_names(ds, data_args, where)
    length_bad, shape_bad, range_bad, unknown, iob1_rows = [], [], [], {}, []
    tag_rows: list[list[str]] = []
    for i, row in enumerate(_rows(ds, ["tokens", "ner_tags"])):
        tokens, tags = row["tokens"], row["ner_tags"]
        if not isinstance(tokens, list) or not isinstance(tags, list) or not all(isinstance(t, str) for t in tokens):
            shape_bad.append(i)
            tag_rows.append([])
            continue
        if len(tokens) != len(tags) or not tokens:
            length_bad.append((i, f"{len(tokens)} tokens, {len(tags)} tags"))
            tag_rows.append([])
            continue
        strs = []
        for t in tags:
            if isinstance(t, bool) or not isinstance(t, (int, str)):
                unknown.setdefault(repr(t), i)
                strs.append("O")
            elif isinstance(t, int):
                if names is None:
                    strs.append("O")  # resolve_labels asks for `label_list`
                elif not 0 <= t < len(names):
                    range_bad.append((i, f"tag id {t}"))
                    strs.append("O")
                else:
                    strs.append(names[t])
            else:
                strs.append(t)
        for t in strs:
            if not _check_tag(t):
                unknown.setdefault(t, i)
        tag_rows.append(strs)
    if shape_bad:
        raise FairtuneError(
            f"{where}: `tokens` must be a list of words and `ner_tags` a list of tags in {_listed(shape_bad)}."
        )
    if length_bad:
        rows, what = zip(*length_bad)
        raise FairtuneError(
            f"{where}: NER needs one tag per token; {_listed(list(rows), list(what))} differ. Fix the rows (more tags "
            "than tokens would be dropped, fewer would crash); nothing was trained."
        )
    if range_bad:
        rows, what = zip(*range_bad)
        raise FairtuneError(
            f"{where}: {_listed(list(rows), list(what))}: tag ids outside `label_list` ({len(names or [])} names)."
        )
    if unknown:
        shown = ", ".join(f"{t!r} (row {r})" for t, r in list(unknown.items())[:MAX_LISTED])
        raise FairtuneError(
            f"{where}: unknown NER tag(s) {shown}; tags must be O or B-/I- (IOB2; also E-/S-, L-/U-) followed by an "
            "entity type, e.g. B-PER. Rename them in the data."
        )
    uses_iobes = any(t[:1] in "ESLU" for tags in tag_rows for t in tags if t != "O")
    if not uses_iobes:
        iob1_rows = [i for i, tags in enumerate(tag_rows) if _entity_starts_with_i(tags)]
    if not iob1_rows:
        return ds
    i = iob1_rows[0]
    k = _entity_starts_with_i(tag_rows[i])[0]
    example = f"row {i}, token {k} {ds[i]['tokens'][k]!r}: {tag_rows[i][k]!r}"
    if names is not None:
        raise FairtuneError(
            f"{where}: the tags are IOB1 ({len(iob1_rows)} rows start an entity with I-, first {example}) and "
            "are ints with names; fairtune trains on IOB2. Convert the data to IOB2 (B- on the first token of every "
            "entity, fairtune.data.validation.iob1_to_iob2) and its `label_list`."
        )
    logger.warning(
        "%s: converting IOB1 tags to IOB2 in %d rows (an entity starting with I- gets B-; first: %s).",
        where,
        len(iob1_rows),
        example,
    )
    converted = {i: iob1_to_iob2(tag_rows[i]) for i in iob1_rows}

    def convert(row: dict, idx: int) -> dict:
        return {"ner_tags": converted.get(idx, row["ner_tags"])}

    return ds.map(convert, with_indices=True, desc="IOB1 -> IOB2")


def validate_raw_datasets(raw, data_args, task: str, training_args=None):
    """Check every split's rows for `task` (classification, qa, ner) before any model is loaded.

    Returns the datasets (NER IOB1 tags converted to IOB2, with a warning; otherwise the same object). Raises
    `FairtuneError` naming the file or split, the row, the field and the fix.
    """
    if not len(raw):
        raise FairtuneError("no data splits: set `train_file` (or `dataset_name`).")
    for split in list(raw):
        ds = raw[split]
        where = _source(split, data_args)
        if len(ds) == 0:
            raise FairtuneError(f"{where}: the {split} split has no rows.")
        if task == "qa":
            validate_qa(ds, where)
        elif task == "ner":
            raw[split] = validate_ner(ds, data_args, where)
        else:
            validate_classification(ds, split, data_args, where)
        validate_groups(ds, data_args, where, training_args, split)
    return raw


__all__ = [
    "answer_span_problem",
    "check_data_file",
    "iob1_to_iob2",
    "read_text_checked",
    "validate_raw_datasets",
]
