"""`erasure: leace` in a training run: fitted on the training split, folded into the head, saved as a plain model."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
from fairtune.pipeline import run_training


def _run(tiny_bert_dir, biased_files, out, **kw):
    return run_training(
        ModelArguments(model_name_or_path=str(tiny_bert_dir)),
        DataArguments(
            train_file=str(biased_files["train"]),
            validation_file=str(biased_files["validation"]),
            group_column="gender",
            max_length=32,
        ),
        FairTrainingArguments(
            output_dir=str(out),
            max_steps=4,
            per_device_train_batch_size=16,
            learning_rate=1e-3,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
            **kw,
        ),  # fmt: skip
    )


def test_erasure_after_training_folds_into_a_plain_model(tiny_bert_dir, biased_files, tmp_path):
    plain = _run(tiny_bert_dir, biased_files, tmp_path / "plain")
    erased = _run(tiny_bert_dir, biased_files, tmp_path / "leace", erasure="leace")
    info = erased["erasure"]
    assert info["method"] == "leace" and info["head_layer"] == "classifier" and info["fit_rows"] == 64
    assert info["leakage_probe_after"] <= info["leakage_probe_before"]
    report = json.loads((tmp_path / "leace" / "fairness_report.json").read_text())
    assert report["erasure_leakage_probe_after"] == pytest.approx(info["leakage_probe_after"])
    # the saved model is a plain transformers model whose head differs from the same run without erasure
    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "plain")
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "leace")
    assert torch.equal(a.bert.embeddings.word_embeddings.weight, b.bert.embeddings.word_embeddings.weight)
    assert not torch.allclose(a.classifier.weight, b.classifier.weight)
    assert "erasure" not in plain
    with pytest.raises(ValueError, match="`erasure`: unknown method 'quadratic'.*cannot be folded"):
        FairTrainingArguments(output_dir=str(tmp_path), erasure="quadratic")


@pytest.mark.slow
def test_demo_table_has_the_post_hoc_rows(tmp_path):
    """`fairtune demo` puts plain + thresholds and plain + LEACE next to the in-training methods."""
    from fairtune.cli import main

    assert (
        main(["demo", "--output-dir", str(tmp_path), "--runs", "baseline,baseline + leace", "--max-steps", "2"]) == 0
    )
    runs = json.loads((tmp_path / "comparison.json").read_text())["runs"]
    assert list(runs) == ["baseline", "baseline + leace", "baseline + thresholds (EO)"]
    assert runs["baseline + thresholds (EO)"]["accuracy"] is not None
    assert runs["baseline + thresholds (EO)"]["leakage_probe_accuracy"] is None  # thresholds change no representation
    assert (tmp_path / "baseline_leace" / "model.safetensors").is_file()
    table = (tmp_path / "comparison.md").read_text()
    assert "| baseline + thresholds (EO) |" in table and "| baseline + leace |" in table
