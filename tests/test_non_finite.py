"""A loss that goes NaN/inf stops training at that step with the term named; no broken model is written."""

from __future__ import annotations

import math

import pytest

from fairtune.cli import main
from fairtune.config import FairTrainingArguments


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_weights_are_refused_before_training(value, tmp_path):
    with pytest.raises(ValueError, match="`eo_weight`: must be a finite number"):
        FairTrainingArguments(output_dir=str(tmp_path), eo_weight=value)


def test_an_overflowing_weight_stops_training_with_the_term_named(tiny_bert_dir, biased_files, tmp_path, capsys):
    """1e39 is a finite Python float but overflows float32: the EO term becomes inf at the first step."""
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(tiny_bert_dir),
            "--train_file",
            str(biased_files["train"]),
            "--group_column",
            "gender",
            "--output_dir",
            str(out),
            "--eo_weight",
            "1e39",
            "--max_steps",
            "3",
            "--per_device_train_batch_size",
            "16",
            "--max_length",
            "32",
            "--use_cpu",
            "true",
            "--save_strategy",
            "steps",
            "--save_steps",
            "1",
            "--report_to",
            "none",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "not finite at step 1" in line and "'eo' (weight 1e+39, value" in line and "Traceback" not in err
    assert not (out / "model.safetensors").exists() and not list(out.glob("checkpoint-*"))


def test_a_group_objective_that_never_sees_two_groups_says_so(tiny_bert_dir, tmp_path, caplog):
    """Rows sorted by group and batches of one group: the objective is an exact 0 every step; the run says why."""
    from conftest import biased_rows
    from helpers import build_trainer

    rows = sorted(biased_rows(32, 0.9, seed=4), key=lambda r: r["gender"])
    trainer = build_trainer(
        tiny_bert_dir, rows, None, tmp_path, eo_weight=1.0, max_steps=2, per_device_train_batch_size=4
    )
    trainer._get_train_sampler = lambda *a, **k: __import__("torch").utils.data.SequentialSampler(
        trainer.train_dataset
    )
    with caplog.at_level("WARNING", logger="fairtune.trainer"):
        trainer.train()
    assert any("no training micro-batch held rows of two groups" in r.getMessage() for r in caplog.records)
    assert any("`eo`" in r.getMessage() and "group_balance: resample" in r.getMessage() for r in caplog.records)


def test_small_groups_are_reported_with_their_count_and_left_out_of_the_gaps(tiny_bert_dir, tmp_path, caplog):
    """`min_group_rows`: a group below it keeps its row in the per-group table but no longer drives the gaps."""
    from conftest import biased_rows
    from helpers import build_trainer

    rows = biased_rows(40, 0.5, seed=6)
    evaluation = rows[:30] + [{**r, "gender": "x"} for r in rows[30:33]]  # a third group with 3 rows
    trainer = build_trainer(tiny_bert_dir, rows, evaluation, tmp_path, min_group_rows=5)
    trainer.nested_report = True
    with pytest.warns(UserWarning, match="min_group_size=5"):
        metrics = trainer.evaluate()
    table = metrics["eval_per_group"]
    assert table["x"]["count"] == 3 and table["x"].get("excluded") is True
    plain = build_trainer(tiny_bert_dir, rows, evaluation, tmp_path / "all", min_group_rows=0)
    plain.nested_report = True
    assert not plain.evaluate()["eval_per_group"]["x"].get("excluded")
