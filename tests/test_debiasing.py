"""A debiasing configuration lowers the TPR gap on a small controlled-bias set (tiny model, real training)."""

import pytest
from conftest import biased_rows, write_jsonl

from fairtune.parser import parse_config
from fairtune.pipeline import run_training


@pytest.mark.slow
def test_cda_and_clp_lower_the_tpr_gap(tiny_bert_dir, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", biased_rows(320, 0.95, seed=1))
    val = write_jsonl(tmp_path / "val.jsonl", biased_rows(240, 0.5, seed=2))
    common = dict(
        model_name_or_path=str(tiny_bert_dir),
        train_file=str(train),
        validation_file=str(val),
        group_column="gender",
        max_length=24,
        num_train_epochs=6,
        per_device_train_batch_size=32,
        learning_rate=1e-3,
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        report_to="none",
        seed=0,
        logging_steps=100,
    )
    base = run_training(*parse_config(None, {**common, "output_dir": str(tmp_path / "base")}))["validation"]
    fair = run_training(
        *parse_config(
            None,
            {
                **common,
                "output_dir": str(tmp_path / "cda"),
                "cda": "two_sided",
                "cda_axes": "gender,names",
                "clp_weight": 1.0,
            },
        )
    )["validation"]
    assert base["tpr_gap_rms"] > 0.3  # the baseline learned the gender shortcut
    assert fair["tpr_gap_rms"] < base["tpr_gap_rms"] - 0.2
    assert fair["accuracy"] >= base["accuracy"] - 0.02  # not by collapsing to one class
    assert "flip_rate" in fair and fair["flip_rate"] < 0.2  # measured on the swapped validation set
    assert fair["counterfactual_pairs"] > 100
