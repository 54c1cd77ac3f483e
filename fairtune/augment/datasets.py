"""Applying the swapper to dataset rows: text/classification, extractive QA (SQuAD schema) and NER.

Output columns (added to every row; the input's own columns are kept, labels untouched):

- `cf_source` (int): for a counterfactual row, the 0-based index of its source row in the input; -1 for a row
  that is an input row unchanged (an original in `two_sided` mode, a row with nothing to swap in either mode).
- `cf_origin` (int): the 0-based input index of the row this output row is or was made from (originals too), so
  an original and its counterfactual share `cf_origin` even after shuffling.
- `cf_edits` (text and QA; list of [field, src_start, src_end, tgt_start, tgt_end]): the character edits that made
  the row from its source, `field` indexing the swapped fields (text: `text_columns` in order; QA: 0 = context,
  1 = question). Empty for unchanged rows. Answer spans are realigned through the field-0 edits.
- `cf_token_map` (NER; list of [start, end) per source token): the new tokens each source token became; identity
  for unchanged rows. When a replacement changes the token count, every source token of the replaced group maps to
  the group's whole new range.

Modes: `two_sided` writes each original immediately followed by its counterfactual (rows with nothing to swap
are kept once, unpaired); `one_sided` replaces rows in place; `neutralize` replaces rows in place by their
neutralized form (the swapper is then a `Neutralizer`; `cf_source` marks the rows that changed). Everything here is
a pure function of its arguments or a picklable callable, so `datasets.Dataset.map(batched=True, num_proc=N)` can
run it: the callable pickles to a few hundred bytes plus the lexicons as one blob, and a worker process builds the
matcher at most once (`Swapper.__setstate__`), never per batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from fairtune.augment.lexicon import NAME_AXES
from fairtune.augment.swapper import Edit, Swapper, map_offset
from fairtune.data.squad import answer_lists, answer_span_problem
from fairtune.metrics.tags import is_person_type, split_tag

TASKS: tuple[str, ...] = ("text", "classification", "qa", "ner")
MODES: tuple[str, ...] = ("two_sided", "one_sided", "neutralize")
CF_SOURCE, CF_ORIGIN, CF_EDITS, CF_TOKEN_MAP = "cf_source", "cf_origin", "cf_edits", "cf_token_map"
QA_FIELDS: tuple[str, ...] = ("context", "question")
# Bump when the rows written for the same settings change (invalidates datasets' cache of earlier results).
FINGERPRINT_VERSION = 2


def normalize_mode(mode: str) -> str:
    """`two_sided` | `one_sided` | `neutralize` (hyphens accepted); anything else is an error naming the choices."""
    norm = str(mode).strip().lower().replace("-", "_")
    if norm not in MODES:
        raise ValueError(
            f"mode {mode!r} is not one of two_sided, one_sided, neutralize (two-sided and one-sided also work)."
        )
    return norm


def normalize_task(task: str) -> str:
    """One of `TASKS`; anything else is an error naming the choices."""
    norm = str(task).strip().lower()
    if norm not in TASKS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)}.")
    return norm


# ---------------------------------------------------------------------------------------------------------------
# QA
# ---------------------------------------------------------------------------------------------------------------
def check_answer_spans(context: str, texts: Sequence[str], starts: Sequence[int], where: str) -> None:
    """Raise unless `context[start:start+len(text)] == text` for every answer (the QA span invariant)."""
    for text, start in zip(texts, starts):
        problem = "answer_start must be >= 0" if start < 0 else answer_span_problem(context, text, start)
        if problem:
            raise ValueError(f"{where}: {problem}.")


def swap_qa_row(swapper: Swapper, row: dict, where: str = "row") -> tuple[dict, list[list[int]]] | None:
    """The counterfactual of a SQuAD row (context, question and answers swapped together) and its edits, or None."""
    for col in QA_FIELDS:
        if not isinstance(row.get(col), str):
            raise ValueError(f"{where}: QA rows need a string `{col}` column (SQuAD schema), got {row.get(col)!r}.")
    context, question = row["context"], row["question"]
    texts, starts = answer_lists(row.get("answers"), where)
    check_answer_spans(context, texts, starts, where)
    r_ctx, r_q = swapper.swap_fields([context, question])
    if not (r_ctx.changed or r_q.changed):
        return None
    new_ctx = r_ctx.text
    new_texts, new_starts = [], []
    for text, start in zip(texts, starts):
        ns = map_offset(r_ctx.edits, start, side="start")
        ne = map_offset(r_ctx.edits, start + len(text), side="end") if text else ns
        new_texts.append(new_ctx[ns:ne])
        new_starts.append(ns)
    check_answer_spans(new_ctx, new_texts, new_starts, f"{where} (counterfactual)")
    out = dict(row)
    out["context"], out["question"] = new_ctx, r_q.text
    answers = row["answers"]
    if isinstance(answers, dict):
        out["answers"] = {**answers, "text": new_texts, "answer_start": new_starts}
    else:
        out["answers"] = [{**a, "text": t, "answer_start": s} for a, t, s in zip(answers, new_texts, new_starts)]
    return out, _edit_rows([r_ctx.edits, r_q.edits])


def _edit_rows(per_field: Sequence[Sequence[Edit]]) -> list[list[int]]:
    return [[f, *ed.offsets()] for f, edits in enumerate(per_field) for ed in edits]


# ---------------------------------------------------------------------------------------------------------------
# Text / classification
# ---------------------------------------------------------------------------------------------------------------
def swap_text_row(
    swapper: Swapper, row: dict, text_columns: Sequence[str], where: str = "row"
) -> tuple[dict, list[list[int]]] | None:
    """The counterfactual of a row whose `text_columns` are swapped together (labels kept), or None."""
    texts = []
    for col in text_columns:
        value = row.get(col)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ValueError(
                f"{where}: text column {col!r} holds {type(value).__name__}, not text; pick a text column."
            )
        texts.append(value)
    results = swapper.swap_fields(texts)
    if not any(r.changed for r in results):
        return None
    out = dict(row)
    for col, res in zip(text_columns, results):
        if row.get(col) is not None:
            out[col] = res.text
    return out, _edit_rows([r.edits for r in results])


# ---------------------------------------------------------------------------------------------------------------
# NER
# ---------------------------------------------------------------------------------------------------------------
def _retag(src_tags: Sequence[str], m: int) -> list[str]:
    """Tags for `m` new tokens replacing a group of source tokens (B-/I-/E-/S- rebuilt; O stays O)."""
    prefix, etype = split_tag(src_tags[0])
    if prefix == "O" or m == 0:
        return [src_tags[0] if prefix == "O" else f"I-{etype}"] * m
    sep = src_tags[0][1]
    last_prefix, _ = split_tag(src_tags[-1])
    first = {"S": "B", "U": "B"}.get(prefix, prefix)
    tags = [f"{first}{sep}{etype}"] + [f"I{sep}{etype}"] * (m - 1)
    if last_prefix in ("S", "E", "L", "U") and m > 1:
        tags[-1] = f"{'L' if last_prefix in ('L', 'U') else 'E'}{sep}{etype}"
    elif last_prefix in ("S", "U") and m == 1:
        tags[0] = f"{prefix}{sep}{etype}"
    return tags


def person_spans(tokens: Sequence[str], tags: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans, in `" ".join(tokens)`, of every person-typed entity (PER, person, ...)."""
    spans, pos, cur = [], 0, None
    for tok, tag in zip(tokens, tags):
        prefix, etype = split_tag(tag)
        start, end = pos, pos + len(tok)
        is_person = is_person_type(etype)
        if is_person and cur is not None and prefix not in ("B", "S", "U"):
            cur[1] = end
        elif is_person:
            if cur is not None:
                spans.append(tuple(cur))
            cur = [start, end]
        else:
            if cur is not None:
                spans.append(tuple(cur))
            cur = None
        pos = end + 1
    if cur is not None:
        spans.append(tuple(cur))
    return spans


def swap_ner_tokens(
    swapper: Swapper, tokens: Sequence[str], tags: Sequence[str], where: str = "row"
) -> tuple[list[str], list[str], list[list[int]]] | None:
    """Swap NER tokens (names only inside person spans); returns new tokens, new tags, token map, or None."""
    if len(tokens) != len(tags):
        raise ValueError(f"{where}: {len(tokens)} tokens but {len(tags)} ner_tags; every token needs one tag.")
    if not tokens:
        return None
    tokens = [str(t) for t in tokens]
    joined = " ".join(tokens)
    spans = person_spans(tokens, tags)
    res = swapper.swap(joined, state=swapper.new_state([joined]), name_spans=spans)
    if not res.changed:
        return None
    starts, ends, pos = [], [], 0
    for tok in tokens:
        starts.append(pos)
        ends.append(pos + len(tok))
        pos += len(tok) + 1
    new_tokens: list[str] = []
    new_tags: list[str] = []
    token_map: list[list[int]] = [[0, 0]] * len(tokens)
    edits = list(res.edits)
    k = ei = 0
    while k < len(tokens):
        if ei >= len(edits) or edits[ei].src_start >= ends[k]:
            token_map[k] = [len(new_tokens), len(new_tokens) + 1]
            new_tokens.append(tokens[k])
            new_tags.append(tags[k])
            k += 1
            continue
        j, group = k, []
        while ei < len(edits) and edits[ei].src_start < ends[j]:
            ed = edits[ei]
            group.append(ed)
            ei += 1
            while ends[j] < ed.src_end:
                j += 1
        base = starts[k]
        text, last = [], base
        for ed in group:
            text.append(joined[last : ed.src_start])
            text.append(ed.new)
            last = ed.src_end
        text.append(joined[last : ends[j]])
        new_text = "".join(text)
        n_src = j - k + 1
        pieces = new_text.split(" ") if (n_src > 1 or any(" " in ed.new for ed in group)) else [new_text]
        pieces = [p for p in pieces if p] or [new_text]
        first = len(new_tokens)
        new_tokens.extend(pieces)
        if len(pieces) == n_src:
            new_tags.extend(tags[k : j + 1])
            for i in range(n_src):
                token_map[k + i] = [first + i, first + i + 1]
        else:
            new_tags.extend(_retag(list(tags[k : j + 1]), len(pieces)))
            for i in range(n_src):
                token_map[k + i] = [first, first + len(pieces)]
        k = j + 1
    return new_tokens, new_tags, token_map


# ---------------------------------------------------------------------------------------------------------------
# Batched map
# ---------------------------------------------------------------------------------------------------------------
class BatchAugmenter:
    """Picklable `Dataset.map(batched=True, with_indices=True)` function: rows in, originals + counterfactuals out."""

    def __init__(
        self,
        swapper: Swapper,
        task: str,
        mode: str,
        text_columns: Sequence[str] = (),
        label_names: Sequence[str] | None = None,
    ) -> None:
        """Hold the swapper and settings (all picklable); `label_names` decodes int NER tags."""
        self.task = normalize_task(task)
        self.mode = normalize_mode(mode)
        if self.mode == "neutralize" and not getattr(swapper, "neutral", False):
            from fairtune.augment.neutral import Neutralizer

            swapper = Neutralizer(swapper.lexicons, seed=swapper.seed)
        self.swapper = swapper
        self.text_columns = list(text_columns)
        self.label_names = list(label_names) if label_names is not None else None
        self.label_ids = {n: i for i, n in enumerate(self.label_names or [])}

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        """Augment one batch; returns every input column plus the `cf_*` columns."""
        columns = list(batch)
        rows = [{c: batch[c][i] for c in columns} for i in range(len(indices))]
        out_rows = self.augment_rows(rows, indices)
        extra = [CF_SOURCE, CF_ORIGIN, CF_TOKEN_MAP if self.task == "ner" else CF_EDITS]
        return {c: [r[c] for r in out_rows] for c in columns + extra}

    def augment_rows(self, rows: Sequence[dict], indices: Sequence[int]) -> list[dict]:
        """Augment plain dict rows; `indices` are their 0-based positions in the whole input."""
        out: list[dict] = []
        for row, idx in zip(rows, indices):
            where = f"row {idx}" + (f" (id {row['id']!r})" if "id" in row else "")
            cf = self._counterfactual(row, where)
            original = dict(row)
            original[CF_SOURCE], original[CF_ORIGIN] = -1, idx
            if self.task == "ner":
                original[CF_TOKEN_MAP] = [[i, i + 1] for i in range(len(row["tokens"]))]
            else:
                original[CF_EDITS] = []
            if cf is None or self.mode == "two_sided":
                out.append(original)
            if cf is not None:
                cf[CF_SOURCE], cf[CF_ORIGIN] = idx, idx
                out.append(cf)
        return out

    def _counterfactual(self, row: dict, where: str) -> dict | None:
        if self.task == "qa":
            got = swap_qa_row(self.swapper, row, where)
            if got is None:
                return None
            new, edits = got
            new[CF_EDITS] = edits
            return new
        if self.task == "ner":
            return self._ner(row, where)
        got = swap_text_row(self.swapper, row, self.text_columns, where)
        if got is None:
            return None
        new, edits = got
        new[CF_EDITS] = edits
        return new

    def _ner(self, row: dict, where: str) -> dict | None:
        tokens, raw_tags = row.get("tokens"), row.get("ner_tags")
        if not isinstance(tokens, list | tuple) or not isinstance(raw_tags, list | tuple):
            raise ValueError(f"{where}: NER rows need list columns `tokens` and `ner_tags`.")
        as_int = bool(raw_tags) and all(isinstance(t, int) and not isinstance(t, bool) for t in raw_tags)
        if as_int:
            if self.label_names is None:
                if any(ax in NAME_AXES for ax in self.swapper.axes):
                    raise ValueError(
                        f"{where}: ner_tags are ints without label names, so person spans are unknown; pass "
                        "label_names (CLI: --label-names O,B-person,I-person,...) or use a ClassLabel feature."
                    )
                tags = ["O"] * len(raw_tags)
            else:
                try:
                    tags = [self.label_names[t] for t in raw_tags]
                except IndexError as err:
                    raise ValueError(
                        f"{where}: a tag id is outside label_names ({len(self.label_names)} names)."
                    ) from err
        else:
            tags = [str(t) for t in raw_tags]
        got = swap_ner_tokens(self.swapper, tokens, tags, where)
        if got is None:
            return None
        new_tokens, new_tags, token_map = got
        out = dict(row)
        out["tokens"] = new_tokens
        if as_int and self.label_names is not None:
            missing = [t for t in new_tags if t not in self.label_ids]
            if missing:
                raise ValueError(f"{where}: rebuilt tags {missing} are not in label_names; add them to the label set.")
            out["ner_tags"] = [self.label_ids[t] for t in new_tags]
        elif as_int:
            if len(new_tokens) != len(tokens):
                raise ValueError(f"{where}: a swap changed the token count; pass label_names to rebuild int tags.")
            out["ner_tags"] = list(raw_tags)
        else:
            out["ner_tags"] = new_tags
        out[CF_TOKEN_MAP] = token_map
        if len(out["tokens"]) != len(out["ner_tags"]):  # the NER invariant; never written out broken
            raise ValueError(f"{where}: internal error, {len(out['tokens'])} tokens vs {len(out['ner_tags'])} tags.")
        return out


def default_text_columns(column_names: Sequence[str]) -> list[str]:
    """The text column of a classification set when none is given (`text`, `sentence`, ...), or an error."""
    for cand in ("text", "sentence", "content", "review", "comment_text"):
        if cand in column_names:
            return [cand]
    raise ValueError(
        f"no text column given and none of text/sentence/content/review found in columns {list(column_names)}; "
        "pass text_columns=[...] (CLI: --text-column COL)."
    )


def check_columns(column_names: Sequence[str], task: str, text_columns: Sequence[str]) -> None:
    """Fail early, naming the missing column and the fix."""
    if CF_SOURCE in column_names:
        raise ValueError(
            f"the input already has a `{CF_SOURCE}` column (it was augmented before); augment the original data."
        )
    needed = {"qa": ["context", "question", "answers"], "ner": ["tokens", "ner_tags"]}.get(task, list(text_columns))
    missing = [c for c in needed if c not in column_names]
    if missing:
        flag = " (CLI: --text-column COL)" if task in ("text", "classification") else ""
        raise ValueError(
            f"task {task!r}: column(s) {missing} not in the data (columns: {list(column_names)}); "
            f"rename them or pick the right task/columns{flag}."
        )


def augment_dataset(
    ds: Any,
    swapper: Swapper,
    *,
    task: str = "text",
    mode: str = "two_sided",
    text_columns: Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    num_proc: int | None = None,
    batch_size: int = 1000,
) -> Any:
    """Augment a `datasets.Dataset` with `Dataset.map(batched=True, with_indices=True, num_proc=num_proc)`."""
    from datasets import Features, List, Value

    task, mode = normalize_task(task), normalize_mode(mode)
    cols = list(ds.column_names)
    if task in ("text", "classification"):
        text_columns = list(text_columns) if text_columns else default_text_columns(cols)
    else:
        text_columns = []
    check_columns(cols, task, text_columns)
    if task == "ner" and label_names is None:
        feature = ds.features.get("ner_tags")
        inner = getattr(feature, "feature", None)
        if inner is not None and hasattr(inner, "names"):
            label_names = list(inner.names)
    features = Features(dict(ds.features))
    features[CF_SOURCE] = Value("int64")
    features[CF_ORIGIN] = Value("int64")
    if task == "ner":
        features[CF_TOKEN_MAP] = List(List(Value("int64")))
    else:
        features[CF_EDITS] = List(List(Value("int64")))
    fn = BatchAugmenter(swapper, task, mode, text_columns, label_names)
    # The fingerprint from what decides the output, not from hashing the callable (deterministic across runs).
    settings = (FINGERPRINT_VERSION, fn.swapper.fingerprint(), task, mode)
    settings += (tuple(text_columns), tuple(label_names or ()), batch_size)
    new_fingerprint = hashlib.sha256(repr((ds._fingerprint, settings)).encode()).hexdigest()[:32]
    return ds.map(
        fn,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        remove_columns=cols,
        features=features,
        new_fingerprint=new_fingerprint,
        desc=f"counterfactual augmentation ({task}, {mode})",
    )
