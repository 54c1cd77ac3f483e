"""Bad input: each a clear error naming the field and the fix, never a deep stack trace or silent drop."""

import logging

import pytest
from conftest import biased_rows
from datasets import Dataset, DatasetDict

from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
from fairtune.data import balance_weights, encode_datasets, load_raw_datasets, pair_columns


def args(**kw):
    return FairTrainingArguments(output_dir="/tmp/fairtune-test", report_to="none", use_cpu=True, **kw)


def raw(train, validation=None):
    d = DatasetDict({"train": Dataset.from_list(train)})
    if validation is not None:
        d["validation"] = Dataset.from_list(validation)
    return d


def test_missing_label_column_names_existing_columns():
    with pytest.raises(ValueError, match=r"`label_column`.*'target'.*\['text', 'label', 'gender'\]"):
        encode_datasets(raw(biased_rows(4, 0.5)), DataArguments(label_column="target", group_column="gender"), args())


def test_missing_group_column_needed_by_objective():
    with pytest.raises(ValueError, match=r"`group_column`.*\['sex'\].*columns"):
        encode_datasets(raw(biased_rows(4, 0.5)), DataArguments(group_column="sex"), args(dp_weight=1.0))


def test_missing_group_column_without_objective_is_plain_finetune(caplog):
    with caplog.at_level(logging.WARNING):
        enc_ds, enc = encode_datasets(raw(biased_rows(4, 0.5)), DataArguments(group_column="sex"), args())
    assert enc.group_names == [] and set(enc_ds["train"]["group"]) == {-1}
    assert "not found" in caplog.text


def test_no_group_column_and_no_objective_is_fine():
    _, enc = encode_datasets(raw(biased_rows(4, 0.5)), DataArguments(group_column=None), args())
    assert enc.group_names == []


def test_unknown_label_values_in_validation():
    val = biased_rows(4, 0.5)
    val[0]["label"] = "pilot"
    with pytest.raises(ValueError, match=r"never seen in training: \{'pilot': 1\}"):
        encode_datasets(raw(biased_rows(8, 0.5), val), DataArguments(group_column="gender"), args())


def test_negative_weight_and_bad_choices():
    with pytest.raises(ValueError, match="`eo_weight`.*>= 0"):
        args(eo_weight=-0.1)
    with pytest.raises(ValueError, match="`mindiff_kernel`"):
        args(mindiff_kernel="cosine")
    with pytest.raises(ValueError, match="`group_balance`"):
        args(group_balance="oversample")
    with pytest.raises(ValueError, match="`task`"):
        ModelArguments(task="summarization")
    with pytest.raises(ValueError, match="`cda`"):
        DataArguments(cda="three_sided")
    with pytest.raises(ValueError, match="`train_file`.*csv, json"):
        DataArguments(train_file="data.xlsx")


def test_adversary_needs_two_groups():
    rows = [dict(r, gender="female") for r in biased_rows(8, 0.5)]
    with pytest.raises(ValueError, match="`adversary_weight`.*at least two groups"):
        encode_datasets(raw(rows), DataArguments(group_column="gender"), args(adversary_weight=1.0))


def test_empty_split():
    empty = DatasetDict({"train": Dataset.from_dict({"text": [], "label": [], "gender": []})})
    with pytest.raises(ValueError, match="train split is empty"):
        encode_datasets(empty, DataArguments(group_column="gender"), args())


def test_missing_groups_counted_and_warned(caplog):
    rows = biased_rows(10, 0.5)
    rows[0]["gender"] = None
    rows[1]["gender"] = ""
    with caplog.at_level(logging.WARNING):
        enc_ds, enc = encode_datasets(raw(rows), DataArguments(group_column="gender"), args(dp_weight=1.0))
    assert enc_ds["train"]["group"][:2] == [-1, -1]
    assert len(enc_ds["train"]) == 10  # trained on, not dropped
    assert enc.group_counts["train"]["<missing>"] == 2
    assert "2 of 10 rows have no group" in caplog.text


def test_intersectional_and_integer_groups():
    rows = biased_rows(12, 0.5)
    for i, r in enumerate(rows):
        r["age"] = i % 3
    enc_ds, enc = encode_datasets(raw(rows), DataArguments(group_column=["gender", "age"]), args())
    assert len(enc.group_names) == 6 and "female|0" in enc.group_names
    assert min(enc_ds["train"]["group"]) >= 0


def test_cf_source_pairs_by_origin_and_by_layout():
    # fairtune augment two_sided output: originals (-1) each followed by its counterfactual; row 1 unchanged
    pair, is_cf = pair_columns([-1, -1, 1, -1, 2], [0, 1, 1, 2, 2])
    assert pair == [-1, 1, 1, 2, 2] and is_cf == [0, 0, 1, 0, 1]
    # shuffled rows keep their pairs through cf_origin
    pair, _ = pair_columns([2, -1, -1, 1, -1], [2, 0, 1, 1, 2])
    assert pair == [2, -1, 1, 1, 2]
    # one-sided output (no originals) has no pairs
    assert pair_columns([0, -1], [0, 1])[0] == [-1, -1]
    # without cf_origin the two-sided layout is assumed and checked
    assert pair_columns([None, 0, None, None, 2])[0] == [0, 0, -1, 2, 2]
    with pytest.raises(ValueError, match="`cf_source`.*cf_origin"):
        pair_columns([None, 5])


def test_balance_weights_equalise_cells():
    w = balance_weights([0, 0, 0, 1], [1, 1, 0, 1])
    # cells (0,1): 2 rows, (0,0): 1, (1,1): 1 -> weights n/(3*count)
    assert w == pytest.approx([4 / 6, 4 / 6, 4 / 3, 4 / 3])


def test_files_missing_and_no_data():
    with pytest.raises(FileNotFoundError, match="`train_file`"):
        load_raw_datasets(DataArguments(train_file="/nonexistent/train.csv"))
    with pytest.raises(ValueError, match="no data"):
        load_raw_datasets(DataArguments())


def test_group_objective_without_enough_groups_in_trainer(tiny_bert_dir, tmp_path):
    from helpers import build_trainer

    rows = [dict(r, gender="female") for r in biased_rows(8, 0.5)]
    with pytest.raises(ValueError, match="`dp_weight` need at least two groups"):
        build_trainer(tiny_bert_dir, rows, None, tmp_path, dp_weight=1.0)
