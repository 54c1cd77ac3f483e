"""NER and QA batches for post-hoc erasure (`fairtune erase --task ner|qa`), built on `fairtune train`'s data path.

The rows go through what the training pipeline runs before its FairTrainer: the per-task row checks of
`fairtune.data.validation`, lexicon groups (`group_from_lexicon`, `fairtune.cda.add_lexicon_groups`), group ids
(`fairtune.data.encode_datasets`), the task adapter's `preprocess` (NER word alignment, QA doc_stride windows) and
its collator. The batches therefore hold what the trainer's eval dataloader yields (`input_ids`, `attention_mask`,
`labels` / `start_positions`, `group`, ...), which is what `erase_model` and `erasure_report` read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from datasets import Dataset, DatasetDict

from fairtune.columns import GROUP_KEY
from fairtune.config import DataArguments
from fairtune.errors import FairtuneError
from fairtune.tasks import get_adapter

SPAN_TASKS = ("ner", "qa")
DATA_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")
#: the columns the NER adapter and its row checks read (the CLI renames the user's columns to these)
NER_COLUMNS = ("tokens", "ner_tags")
_FIT, _HELD = "train", "validation"
#: what `encode_datasets` reads of the training arguments: no objective here, so a missing group only warns
_NO_OBJECTIVES = SimpleNamespace(
    do_train=False, uses_group_objective=False, adversary_weight=0.0, group_balance="none"
)


@dataclass
class TaskBatches:
    """Collated fitting (and held-out) batches, the group names behind their ids, the raw group counts per split,
    and the examples (`rows`) and preprocessed features (QA windows) of `fit` and `held_out`."""

    fit: list[dict[str, Any]]
    held_out: list[dict[str, Any]] | None
    group_names: list[str]
    group_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    features: dict[str, int] = field(default_factory=dict)


def load_split(source: str, flag: str, split: str = "train") -> Dataset:
    """A local csv/json/jsonl/parquet file (checked as `fairtune train` checks it) or one split of a Hub data set."""
    from fairtune.data.loading import load_raw_datasets, read_data_file

    path = Path(source)
    if path.suffix.lower() in DATA_SUFFIXES:  # a file name: a missing one is named as such, not as a Hub id
        return read_data_file(path, flag, split)
    if path.exists():
        raise FairtuneError(f"`{flag}`: {source} is not a csv, json, jsonl or parquet file; convert it.")
    raw = load_raw_datasets(DataArguments(dataset_name=source, group_column=None))
    if split not in raw:
        raise FairtuneError(f"`{flag}`: the Hub data set {source!r} has no {split!r} split (it has {list(raw)}).")
    return raw[split]


def rename_columns(ds: Dataset, renames: Mapping[str, str]) -> Dataset:
    """The data with each user column (key) under the name the adapter reads (value); a column already holding
    that name is replaced."""
    for src, dst in renames.items():
        if src == dst or src not in ds.column_names:
            continue
        if dst in ds.column_names:
            ds = ds.remove_columns(dst)
        ds = ds.rename_column(src, dst)
    return ds


def validate_split(ds: Dataset, task: str, data_args: DataArguments, where: str) -> Dataset:
    """One split's rows checked as `validate_raw_datasets` checks them, with errors naming `where` (e.g. a flag)."""
    from fairtune.data.validation import validate_groups, validate_ner, validate_qa

    if len(ds) == 0:
        raise FairtuneError(f"{where}: no rows.")
    if task == "qa":
        validate_qa(ds, where)
    elif task == "ner":
        ds = validate_ner(ds, data_args, where)
    validate_groups(ds, data_args, where)
    return ds


def check_tags(ds: Dataset, label_list: Sequence[str], where: str) -> None:
    """NER: every tag is one of the model's labels (`config.id2label`, in id order) or an id in range."""
    names = set(label_list)
    unknown, bad_ids = set(), set()
    for tags in ds[NER_COLUMNS[1]]:
        for t in tags:
            if isinstance(t, int) and not isinstance(t, bool):
                if not 0 <= t < len(label_list):
                    bad_ids.add(t)
            elif str(t) not in names:
                unknown.add(str(t))
    if unknown or bad_ids:
        raise FairtuneError(
            f"{where}: tag(s) {sorted(unknown) or sorted(bad_ids)} are not among the model's {len(label_list)} labels "
            f"{list(label_list)} (config.id2label); use the tags the model was trained on."
        )


def _remap_groups(ds: Dataset, old_names: Sequence[str], names: Sequence[str]) -> Dataset:
    """Group ids of `ds` re-expressed over `names` (ids of other groups become -1)."""
    lookup = {n: i for i, n in enumerate(names)}
    new = [lookup.get(old_names[g], -1) if g >= 0 else -1 for g in ds[GROUP_KEY]]
    return ds.remove_columns(GROUP_KEY).add_column(GROUP_KEY, new)


def _collate(features: Dataset, collator: Any, batch_size: int) -> list[dict[str, Any]]:
    """The features in order, collated `batch_size` at a time (what the trainer's eval dataloader yields)."""
    from torch.utils.data import DataLoader

    return list(DataLoader(features, batch_size=batch_size, shuffle=False, collate_fn=collator))


def task_batches(
    task: str,
    tokenizer: Any,
    data: Dataset,
    eval_data: Dataset | None,
    data_args: DataArguments,
    *,
    label_list: Sequence[str] | None = None,
    batch_size: int = 32,
    where: tuple[str, str] = ("data", "eval data"),
) -> TaskBatches:
    """Validate, group, preprocess and collate NER/QA fitting data (and held-out data) for `erase_model`.

    Args:
        task: `ner` or `qa`.
        tokenizer: the model's tokenizer.
        data, eval_data: raw rows with the adapter's columns (NER `tokens`/`ner_tags`, QA question/context/answers).
        data_args: group column(s) or `group_from_lexicon`, `max_length`, `doc_stride`, `label_all_tokens`.
        label_list: NER: the model's tag names in id order.
        where: how errors name the fitting and the held-out data (e.g. `--data train.jsonl`).

    Group ids are those of the groups present in `data`; held-out rows of any other group get -1 (left out).
    """
    if task not in SPAN_TASKS:
        raise ValueError(f"task_batches builds {SPAN_TASKS} batches, got task {task!r}")
    from fairtune.data import encode_datasets

    raw = DatasetDict({_FIT: validate_split(data, task, data_args, where[0])})
    if eval_data is not None:
        raw[_HELD] = validate_split(eval_data, task, data_args, where[1])
    adapter = get_adapter(task)
    if task == "ner":
        for split, name in ((_FIT, where[0]), (_HELD, where[1])):
            if split in raw:
                check_tags(raw[split], label_list or [], name)
    if data_args.group_from_lexicon:
        from fairtune.cda import LEXICON_GROUP_COLUMN, add_lexicon_groups

        raw = add_lexicon_groups(raw, data_args, adapter)
        data_args = dataclasses.replace(data_args, group_column=LEXICON_GROUP_COLUMN)
    encoded, enc = encode_datasets(raw, data_args, _NO_OBJECTIVES, has_class_labels=False)
    present = set(encoded[_FIT][GROUP_KEY])
    names = [n for i, n in enumerate(enc.group_names) if i in present]
    adapter = adapter.configured(data_args, list(label_list or []))
    collator = adapter.collator(tokenizer)
    counts = {("fit" if split == _FIT else "held_out"): c for split, c in enc.group_counts.items()}
    out = TaskBatches(fit=[], held_out=None, group_names=names, group_counts=counts)
    for split, ds in encoded.items():
        ds = _remap_groups(ds, enc.group_names, names)
        features = adapter.preprocess(ds, tokenizer, data_args, split)
        features, _references = adapter.eval_references(ds, features)  # QA: offsets are for scoring, not here
        batches = _collate(features, collator, batch_size)
        key = "fit" if split == _FIT else "held_out"
        out.rows[key], out.features[key] = len(ds), len(features)
        setattr(out, key, batches)
    return out


__all__ = ["SPAN_TASKS", "TaskBatches", "check_tags", "load_split", "rename_columns", "task_batches", "validate_split"]
