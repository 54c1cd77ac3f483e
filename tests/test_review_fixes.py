"""Behaviours around training set-up: demo data files, CDA group swap, CPU multi-process, head re-sizing."""

import json
import logging

import pytest
from conftest import biased_rows
from datasets import Dataset

from fairtune.cli.demo import write_demo_data
from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments


def test_demo_writes_its_splits(tmp_path):
    paths = write_demo_data(tmp_path / "data")
    assert [p.name for p in paths] == ["train.jsonl", "validation.jsonl", "test.jsonl"]
    rows = [json.loads(line) for line in paths[0].read_text().splitlines()]
    assert len(rows) == 1200 and {"text", "label", "gender"} <= set(rows[0])


def test_cda_swaps_the_gender_group_of_counterfactual_rows():
    from fairtune.cda import augment_split

    rows = [{"text": "He is good", "label": "a", "gender": "Male"}, {"text": "the plan", "label": "b", "gender": "F"}]
    out = augment_split(
        Dataset.from_list(rows), DataArguments(cda="two_sided", group_column="gender"), "classification"
    )
    cf = [r for r in out if r["cf_source"] >= 0]
    assert len(cf) == 1 and cf[0]["text"] == "She is good" and cf[0]["gender"] == "Female"
    assert [r["gender"] for r in out if r["cf_source"] < 0] == ["Male", "F"]  # originals untouched


def test_multi_process_without_gpu_uses_cpu(monkeypatch):
    """A derived default of the parsed recipe (the arguments a caller builds are left as given)."""
    from fairtune.parser import parse_config

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(FairTrainingArguments, "_setup_devices", property(lambda self: None), raising=False)
    args = parse_config(None, ["--output_dir", "/tmp/fairtune-cpu-check", "--report_to", "none"])[2]
    assert args.use_cpu is True
    assert parse_config(None, ["--output_dir", "/tmp/x", "--use_cpu", "false"])[2].use_cpu is False
    own = FairTrainingArguments(output_dir="/tmp/fairtune-cpu-check", report_to="none")
    assert own.use_cpu is False


def test_a_checkpoint_with_another_label_set_is_resized(tiny_bert_dir):
    from fairtune.pipeline import load_model, load_tokenizer
    from fairtune.tasks.classification import ClassificationAdapter

    margs = ModelArguments(model_name_or_path=str(tiny_bert_dir))
    model = load_model(margs, ClassificationAdapter(), load_tokenizer(margs), ["a", "b", "c"])
    assert model.config.num_labels == 3 and model.classifier.out_features == 3
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"}


def test_length_grouping_is_ignored_with_clp_and_says_so(tiny_bert_dir, tmp_path, caplog):
    from helpers import build_trainer

    from fairtune.augment import CounterfactualAugmenter

    rows = CounterfactualAugmenter(axes=("gender",)).augment_rows(
        biased_rows(8, 0.9), task="classification", mode="two_sided", text_columns=["text"]
    )
    trainer = build_trainer(
        tiny_bert_dir, rows, None, tmp_path, clp_weight=1.0, train_sampling_strategy="group_by_length"
    )
    with caplog.at_level(logging.WARNING, logger="fairtune.trainer"):
        trainer.get_train_dataloader()
    assert "group_by_length` is ignored" in caplog.text


@pytest.mark.parametrize("value", ["1e-4", "1E-4"])
def test_yaml_exponent_strings_become_floats(tmp_path, value):
    from fairtune.parser import parse_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"learning_rate: {value}\n")
    assert parse_config(recipe, ["--output_dir", str(tmp_path)])[2].learning_rate == 1e-4
