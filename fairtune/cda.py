"""Counterfactual augmentation inside `fairtune train`: the `cda` (none | two_sided | one_sided | neutralize),
`cda_axes`, `cda_seed` recipe keys, and
`group_from_lexicon` (groups read off the lexicon terms an example mentions)."""

from __future__ import annotations

import logging

from datasets import Dataset, DatasetDict

from fairtune.augment import CF_SOURCE, CounterfactualAugmenter, group_from_lexicon

logger = logging.getLogger(__name__)

LEXICON_GROUP_COLUMN = "lexicon_group"
# Group values that a gender swap turns into each other (lower case).
GENDER_VALUE_SWAPS = {
    "female": "male",
    "male": "female",
    "f": "m",
    "m": "f",
    "woman": "man",
    "man": "woman",
    "women": "men",
    "men": "women",
}


def _task_name(task: str) -> str:
    return "classification" if task == "classification" else task


def augment_split(ds: Dataset, data_args, task: str) -> Dataset:
    """Apply CDA to the training split (unless it already carries `cf_source`, made by `fairtune augment`).

    For a gender swap the group column of each counterfactual row is swapped too (female <-> male), since the
    counterfactual now describes the other group; `cda: neutralize` rewrites rows in place with neutral terms and
    keeps their group. `preprocessing_num_workers` sets the processes of the batched map (each builds the matcher
    once).
    """
    if CF_SOURCE in ds.column_names:
        logger.info("training data already has `%s`: using its counterfactual pairs as they are", CF_SOURCE)
        return ds
    aug = CounterfactualAugmenter(
        axes=tuple(data_args.cda_axes),
        seed=data_args.cda_seed,
        lexicons=[data_args.cda_lexicon] if data_args.cda_lexicon else (),
    )
    text_columns = None
    if task == "classification":
        text_columns = [c for c in (data_args.text_column, data_args.text_pair_column) if c]
    out = aug.augment_dataset(
        ds,
        task=_task_name(task),
        mode=data_args.cda,
        text_columns=text_columns,
        label_names=getattr(data_args, "label_list", None) if task == "ner" else None,
        num_proc=data_args.preprocessing_num_workers,
    )
    if "gender" in data_args.cda_axes and data_args.cda != "neutralize":
        out = _swap_gender_groups(out, data_args.group_columns)
    n_cf = sum(1 for s in out[CF_SOURCE] if s is not None and s >= 0)
    logger.info(
        "CDA (%s, axes %s): %d rows in, %d out, %d counterfactuals",
        data_args.cda,
        data_args.cda_axes,
        len(ds),
        len(out),
        n_cf,
    )
    return out


def _swap_gender_groups(ds: Dataset, group_columns: list[str]) -> Dataset:
    cols = [c for c in group_columns if c in ds.column_names and c != LEXICON_GROUP_COLUMN]
    if not cols:
        return ds

    def swap(row: dict) -> dict:
        if row[CF_SOURCE] is None or row[CF_SOURCE] < 0:
            return {}
        new = {}
        for c in cols:
            v = row[c]
            if isinstance(v, str) and v.strip().lower() in GENDER_VALUE_SWAPS:
                target = GENDER_VALUE_SWAPS[v.strip().lower()]
                new[c] = target.upper() if v.isupper() else target.title() if v.istitle() else target
        return new

    return ds.map(swap, desc="Swapping gender groups of counterfactuals")


def example_text(row: dict, data_args, task: str) -> str:
    """The text of an example that lexicon terms are looked for in."""
    if task == "ner":
        return " ".join(row["tokens"])
    if task == "qa":
        return f"{row['question']} {row['context']}"
    parts = [row.get(data_args.text_column)]
    if data_args.text_pair_column:
        parts.append(row.get(data_args.text_pair_column))
    return " ".join(str(p) for p in parts if p)


def add_lexicon_groups(raw: DatasetDict, data_args, adapter) -> DatasetDict:
    """Label every example by the lexicon terms it mentions (gender: female, male, both, none) and use that
    column as the group column (`LEXICON_GROUP_COLUMN`; the pipeline sets `group_column` to it)."""
    axis = data_args.group_from_lexicon
    out = DatasetDict()
    for split, ds in raw.items():
        out[split] = ds.map(
            lambda row: {LEXICON_GROUP_COLUMN: group_from_lexicon(example_text(row, data_args, adapter.name), axis)},
            desc=f"Lexicon groups ({axis}) for {split}",
        )
    return out
