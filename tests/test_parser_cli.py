"""Recipes: YAML defaults, CLI overrides, unknown keys; `fairtune train` end to end on a tiny model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fairtune.cli import main
from fairtune.cli.demo import COMMON, RUNS, run_folder
from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
from fairtune.parser import parse_config, typed_flags

REPO = Path(__file__).resolve().parents[1]


def test_yaml_defaults_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dp_weight: 0.5\nsave_strategy: 'no'\nnum_train_epochs: 3\ngroup_column: [gender, age]\n")
    m, d, t = parse_config(recipe, ["--dp_weight", "2", "--output_dir", str(tmp_path), "--cda_axes=gender,names"])
    assert t.dp_weight == 2.0 and t.num_train_epochs == 3 and t.save_strategy == "no"
    assert d.group_column == ["gender", "age"] and d.cda_axes == ["gender", "names"]
    assert isinstance(m, ModelArguments) and isinstance(d, DataArguments) and isinstance(t, FairTrainingArguments)


def test_null_flag_clears_a_field_the_recipe_sets(tmp_path):
    """`--dataset_name null` trains on local files with a recipe that names a Hub dataset (recipes/qa/README.md)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dataset_name: squad\nmax_train_samples: 100\n")
    flags = ["--dataset_name", "null", "--max_train_samples", "None", "--train_file", "t.jsonl", "--cda", "none"]
    m, d, t = parse_config(recipe, flags)
    assert d.dataset_name is None and d.max_train_samples is None and d.train_file == "t.jsonl"
    assert d.cda == "none"  # a str field without None keeps the word
    assert typed_flags(["--dataset_name=null", "--seed", "3"]) == {"dataset_name": None, "seed": 3}  # sweeps


def test_unknown_key_is_an_error_with_suggestion(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("eo_wieght: 1.0\n")
    with pytest.raises(ValueError, match="did you mean 'eo_weight'"):
        parse_config(recipe)
    with pytest.raises(ValueError, match="unknown recipe key"):
        parse_config(None, ["--not_a_field", "1"])


def test_fairtune_keys_never_shadow_training_arguments():
    from dataclasses import fields

    from transformers import TrainingArguments

    base = {f.name for f in fields(TrainingArguments)}
    own = {f.name for cls in (ModelArguments, DataArguments) for f in fields(cls)}
    own |= set(FairTrainingArguments(output_dir="x").fairtune_fields())
    assert not (own & base), own & base


def test_every_recipe_parses():
    for path in sorted((REPO / "recipes").rglob("*.yaml")):
        if "accelerate_configs" in path.parts or "eval" in path.parts:
            continue
        parse_config(path, ["--output_dir", "/tmp/fairtune-recipe-check"])


def test_demo_recipes_match_the_demo_command():
    for name, extra in RUNS.items():
        recipe = yaml.safe_load((REPO / "recipes/classification" / f"minilm-demo-{run_folder(name)}.yaml").read_text())
        recipe.pop("output_dir")
        assert recipe == {**COMMON, **extra}, name


def test_train_cli_end_to_end(tiny_bert_dir, biased_files, tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(tiny_bert_dir),
            "--train_file",
            str(biased_files["train"]),
            "--validation_file",
            str(biased_files["validation"]),
            "--group_column",
            "gender",
            "--output_dir",
            str(out),
            "--adversary_weight",
            "0.5",
            "--eo_weight",
            "1",
            "--max_steps",
            "4",
            "--per_device_train_batch_size",
            "16",
            "--max_length",
            "32",
            "--use_cpu",
            "true",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ]
    )
    assert code == 0
    report = json.loads((out / "fairness_report.json").read_text())
    for key in (
        "accuracy",
        "macro_f1",
        "demographic_parity_difference",
        "equalized_odds_difference",
        "tpr_gap_rms",
        "leakage_probe_accuracy",
        "leakage_probe_majority_baseline",
        "per_group",
    ):
        assert key in report, key
    assert not any(k.startswith("eval_") for k in report)
    assert set(report["per_group"]) == {"female", "male"}
    assert {"tpr", "fpr", "selection_rate", "accuracy"} <= set(report["per_group"]["female"])
    assert (out / "fairness_report.md").is_file() and (out / "fairness_per_group.png").is_file()
    config = json.loads((out / "fairtune_config.json").read_text())
    assert config["adversary_weight"] == 0.5 and "hub_token" not in config
    assert (out / "model.safetensors").is_file()


def test_train_cli_reports_bad_recipe_cleanly(tmp_path, capsys):
    code = main(["train", "--dp_weight", "-1", "--output_dir", str(tmp_path)])
    assert code == 2
    assert "`dp_weight`" in capsys.readouterr().err


def test_python_m_fairtune_help():
    out = subprocess.run([sys.executable, "-m", "fairtune", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "recipe" in out.stdout


def test_public_api_exports():
    import fairtune

    for name in fairtune.__all__:
        assert getattr(fairtune, name) is not None, name


def test_augment_then_train_pairs_counterfactuals_as_they_are(tiny_bert_dir, biased_files, tmp_path):
    aug = tmp_path / "train_cda.jsonl"
    assert (
        main(
            [
                "augment",
                "--task",
                "classification",
                "--input",
                str(biased_files["train"]),
                "--output",
                str(aug),
                "--text-column",
                "text",
                "--axes",
                "gender,names",
                "--mode",
                "two_sided",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in aug.read_text().splitlines()]
    assert sum(r["cf_source"] >= 0 for r in rows) > 50
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(tiny_bert_dir),
            "--train_file",
            str(aug),
            "--validation_file",
            str(biased_files["validation"]),
            "--group_column",
            "gender",
            "--output_dir",
            str(out),
            "--clp_weight",
            "1",
            "--max_steps",
            "3",
            "--per_device_train_batch_size",
            "16",
            "--max_length",
            "32",
            "--use_cpu",
            "true",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
            "--logging_steps",
            "1",
        ]
    )
    assert code == 0
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    pairs = [h["clp_pairs"] for h in history if "clp_pairs" in h]
    assert pairs and min(pairs) > 0  # every batch held whole pairs from the file's cf_source/cf_origin


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 1e-4\n")  # YAML 1.1 reads this as a string
    _, _, t = parse_config(recipe, ["--adversary_lr", "1e-3", "--output_dir", str(tmp_path)])
    assert t.learning_rate == 1e-4 and t.adversary_lr == 1e-3
