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
