"""Loading a dataset and turning its label and group columns into the ids fairtune trains on.

Everything here runs before tokenization: bad input (missing columns, unknown labels, empty splits, too few
groups) fails here with an error that names the column and the fix, and nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, DatasetDict

from fairtune.balance import row_balance_weights
from fairtune.columns import GROUP_KEY, IS_CF_KEY, PAIR_KEY, WEIGHT_KEY
from fairtune.data.validation import check_data_file
from fairtune.errors import FairtuneError

logger = logging.getLogger(__name__)

SPLIT_ALIASES = {"validation": ("validation", "valid", "dev", "val"), "test": ("test",), "train": ("train",)}


def _builder(path: str) -> str:
    ext = Path(path).suffix.lstrip(".").lower()
    return {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}[ext]


def load_raw_datasets(data_args) -> DatasetDict:
    """Load `dataset_name` (a parquet-backed Hub dataset, `demo`, or `redditbias` from `data_dir`) or local files."""
    if data_args.dataset_name == "demo":
        from fairtune.demo_data import load_demo_dataset

        return load_demo_dataset()
    if data_args.dataset_name == "redditbias":
        from fairtune.data.redditbias import DEFAULT_DATA_DIR, load_redditbias

        return load_redditbias(getattr(data_args, "data_dir", None) or DEFAULT_DATA_DIR)[0]
    if data_args.dataset_name:
        try:
            raw = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name)
        except RuntimeError as err:
            if "scripts are no longer supported" in str(err):
                raise ValueError(
                    f"`dataset_name`: {data_args.dataset_name!r} is a script-based dataset, which datasets 5.x "
                    "cannot load; use a parquet-backed repository (e.g. its `refs/convert/parquet` revision) or "
                    "local files."
                ) from err
            raise
        out = DatasetDict()
        for split, aliases in SPLIT_ALIASES.items():
            for name in aliases:
                if name in raw:
                    out[split] = raw[name]
                    break
        return out
    files = {
        split: getattr(data_args, f"{split}_file")
        for split in ("train", "validation", "test")
        if getattr(data_args, f"{split}_file")
    }
    if not files:
        raise ValueError(
            "no data: set `dataset_name` or `train_file` (and optionally `validation_file`, `test_file`)."
        )
    out = DatasetDict()
    for split, path in files.items():
        if not Path(path).is_file() and not Path(path).is_dir():
            raise FileNotFoundError(f"`{split}_file`: {path!r} does not exist.")
        out[split] = read_data_file(path, f"{split}_file", split)
    return out


def read_data_file(path: str | Path, field: str, split: str = "train") -> Dataset:
    """One local csv/json/jsonl/parquet file as a Dataset, its bytes checked first (encoding, JSON lines, CSV rows).

    Whatever `datasets` still cannot read becomes a `FairtuneError` naming the file, not a deep traceback.
    """
    check_data_file(path, field)
    try:
        return datasets.load_dataset(_builder(str(path)), data_files={split: str(path)}, split=split)
    except Exception as err:  # noqa: BLE001 - the door: any reader failure on a user's file is a user error
        cause = err.__cause__ or err.__context__ or err
        detail = " ".join(str(cause).split())[:300] or type(cause).__name__
        raise FairtuneError(f"`{field}`: datasets could not read {path}: {detail}") from err


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _label_key(value: Any) -> str:
    return str(value).strip()


@dataclass
class Encodings:
    """How labels and groups of the raw data map to ids."""

    label_list: list[str] = field(default_factory=list)
    group_names: list[str] = field(default_factory=list)
    group_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)


def _check_column(ds: Dataset, column: str, field_name: str, split: str) -> None:
    if column not in ds.column_names:
        raise ValueError(
            f"`{field_name}`: column {column!r} is not in the {split} data; columns there are "
            f"{ds.column_names}. Set `{field_name}` to one of them."
        )


def encode_datasets(
    raw: DatasetDict, data_args, training_args, *, has_class_labels: bool = True
) -> tuple[DatasetDict, Encodings]:
    """Map labels to `labels` ids and groups to `group` ids (-1 = missing); add pair and weight columns.

    Raises on empty splits, missing columns, labels unseen in training and adversaries with fewer than two groups.
    """
    if "train" not in raw and training_args.do_train:
        raise ValueError("no training split: set `train_file` or a `dataset_name` with a train split.")
    for split, ds in raw.items():
        if len(ds) == 0:
            raise ValueError(f"the {split} split is empty: check `{split}_file` / `dataset_name`.")
    enc = Encodings()
    out = DatasetDict()

    # Labels (classification-like tasks): the label list comes from the training split.
    if has_class_labels:
        label_col = data_args.label_column
        ref = raw["train"] if "train" in raw else next(iter(raw.values()))
        _check_column(ref, label_col, "label_column", "train" if "train" in raw else "evaluation")
        values = [v for v in ref[label_col] if not _missing(v)]
        if len(values) < len(ref):
            raise ValueError(f"`label_column`: {len(ref) - len(values)} training rows have no {label_col!r} value.")
        uniq = sorted(set(values), key=lambda v: (isinstance(v, str), v))
        enc.label_list = [_label_key(v) for v in uniq]
        if len(enc.label_list) < 2:
            raise ValueError(f"`label_column`: {label_col!r} has a single value {enc.label_list}; need 2 or more.")
        label_to_id = {k: i for i, k in enumerate(enc.label_list)}

    # Groups: any number, strings or ints, intersectional when several columns are named.
    gcols = data_args.group_columns
    needs_groups = training_args.uses_group_objective
    ref_cols = raw["train"].column_names if "train" in raw else next(iter(raw.values())).column_names
    missing_cols = [c for c in gcols if c not in ref_cols]
    if missing_cols:
        if needs_groups:
            raise ValueError(
                f"`group_column`: {missing_cols} not in the data (columns: {ref_cols}); a group objective or the "
                "adversary needs it. Set `group_column` to the protected-attribute column."
            )
        logger.warning("group column(s) %s not found: training without groups and group metrics.", missing_cols)
        gcols = []
    elif needs_groups and not gcols:
        raise ValueError("a group objective or the adversary is on but `group_column` is unset; name the column.")

    def group_values(ds: Dataset) -> list[str | None]:
        if not gcols or not all(c in ds.column_names for c in gcols):
            return [None] * len(ds)
        columns = [list(ds[c]) for c in gcols]
        out_vals: list[str | None] = []
        for parts in zip(*columns):
            out_vals.append(None if any(_missing(v) for v in parts) else "|".join(_label_key(v) for v in parts))
        return out_vals

    split_groups = {split: group_values(ds) for split, ds in raw.items()}
    names = {g for vals in split_groups.values() for g in vals if g is not None}
    enc.group_names = sorted(names, key=lambda s: (len(s), s))
    group_to_id = {g: i for i, g in enumerate(enc.group_names)}

    for split, ds in raw.items():
        cols = ds.column_names
        encoded = ds
        if has_class_labels and data_args.label_column in cols:
            ids, unknown = [], Counter()
            for v in ds[data_args.label_column]:
                key = None if _missing(v) else _label_key(v)
                if key is not None and key not in label_to_id:
                    unknown[key] += 1
                ids.append(label_to_id.get(key, -100) if key is not None else -100)
            if unknown:
                raise ValueError(
                    f"`label_column`: the {split} split has label values never seen in training: {dict(unknown)}. "
                    f"Training labels are {enc.label_list}; fix the data or add those labels to the training split."
                )
            encoded = _set_column(encoded, "labels", ids)
        gvals = split_groups[split]
        encoded = _set_column(encoded, GROUP_KEY, [group_to_id[g] if g is not None else -1 for g in gvals])
        counts = Counter(g if g is not None else "<missing>" for g in gvals)
        enc.group_counts[split] = dict(counts)
        if gcols and counts.get("<missing>"):
            logger.warning(
                "%s: %d of %d rows have no group; they are trained on but left out of group objectives and metrics.",
                split,
                counts["<missing>"],
                len(ds),
            )
        if "cf_source" in cols:
            origin = list(ds["cf_origin"]) if "cf_origin" in cols else None
            pair_ids, is_cf = pair_columns(list(ds["cf_source"]), origin)
        else:
            pair_ids, is_cf = [-1] * len(ds), [0] * len(ds)
        encoded = _set_column(encoded, PAIR_KEY, pair_ids)
        encoded = _set_column(encoded, IS_CF_KEY, is_cf)
        out[split] = encoded

    if training_args.adversary_weight > 0 and "train" in out:
        present = {g for g in out["train"][GROUP_KEY] if g >= 0}
        if len(present) < 2:
            raise ValueError(
                f"`adversary_weight`: the adversary needs at least two groups in the training data, found "
                f"{len(present)} ({[enc.group_names[g] for g in present]}). Check `group_column`."
            )
    if training_args.group_balance == "reweight" and "train" in out:
        out["train"] = add_balance_weights(out["train"])
    return out, enc


def _set_column(ds: Dataset, name: str, values: list) -> Dataset:
    if name in ds.column_names:
        ds = ds.remove_columns(name)
    return ds.add_column(name, values)


def pair_columns(cf_source: list, cf_origin: list | None = None) -> tuple[list[int], list[int]]:
    """Pair ids and counterfactual flags from `fairtune augment`'s columns.

    `cf_source` is the input index of a counterfactual's source row (-1 or missing on other rows) and
    `cf_origin` the input index every row is or came from. Rows sharing an origin form a pair when one is an
    original and another a counterfactual; the pair id is that origin. Without `cf_origin`, the two-sided layout
    (each original directly followed by its counterfactuals) is assumed and checked.
    """
    is_cf = [int(not _missing(s) and int(s) >= 0) for s in cf_source]
    if cf_origin is None:
        cf_origin, next_index, last_original = [], 0, None
        for i, (src, c) in enumerate(zip(cf_source, is_cf)):
            if c:
                if last_original is None or int(src) != last_original:
                    raise ValueError(
                        f"`cf_source`: row {i} names source {int(src)}, which is not the original just before it; "
                        "add the `cf_origin` column (written by `fairtune augment`) or keep each original directly "
                        "before its counterfactual."
                    )
                cf_origin.append(int(src))
            else:
                last_original = next_index
                cf_origin.append(next_index)
                next_index += 1
    origins = [int(o) if not _missing(o) else -1 for o in cf_origin]
    has_original = {o for o, c in zip(origins, is_cf) if not c and o >= 0}
    has_cf = {o for o, c in zip(origins, is_cf) if c and o >= 0}
    paired = has_original & has_cf
    pair = [o if o in paired else -1 for o in origins]
    return pair, is_cf


def balance_weights(groups: list[int], labels: list[int] | None) -> list[float]:
    """Weights making every (group, label) cell count equally (`fairtune.balance`); ungrouped rows get 1."""
    return row_balance_weights(groups, labels)


def add_balance_weights(ds: Dataset) -> Dataset:
    """Add a `sample_weight` column for `group_balance: reweight`."""
    labels = list(ds["labels"]) if "labels" in ds.column_names else None
    return ds.add_column(WEIGHT_KEY, balance_weights(list(ds[GROUP_KEY]), labels))
