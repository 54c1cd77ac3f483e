"""`fairtune erase` and the extended `fairtune thresholds` end to end on tiny models."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from test_eval_models import _bert_config, tiny_model

from fairtune.cli import main


def _data(tmp_path, name="data.csv", n=120, seed=2, classes=2):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        female = bool(rng.integers(0, 2))
        rows.append(
            {
                "text": f"{'she' if female else 'he'} said {'her' if female else 'his'} thing {i % 7}",
                "label": int(rng.integers(0, classes)),
                "gender": "female" if female else "male",
                "age": "young" if i % 3 else "old",
            }
        )
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_erase_writes_a_plain_model_and_a_report(tmp_path, capsys):
    import transformers as tf

    train, held = _data(tmp_path), _data(tmp_path, "held.csv", seed=3)
    out = tmp_path / "erased"
    argv = ["erase", "--model", tiny_model("classifier"), "--data", str(train), "--group-column", "gender"]
    assert main([*argv, "--eval-data", str(held), "--output", str(out)]) == 0
    report = json.loads((out / "erasure_report.json").read_text())
    assert report["method"] == "leace" and report["groups"] == sorted(report["groups"], key=report["groups"].index)
    held_out = report["held_out"]
    assert held_out["leakage_probe_before"] > 0.9  # pronouns reveal the group
    assert held_out["leakage_probe_after"] <= held_out["leakage_probe_majority_baseline"] + 0.1
    assert held_out["transfer_probe_before"] > 0.9  # a probe trained on the fitting rows reads the group...
    assert held_out["transfer_probe_after"] <= held_out["leakage_probe_majority_baseline"] + 0.1  # ...not after
    assert {"accuracy_before", "accuracy_after"} <= set(held_out)
    assert "held-out data" in capsys.readouterr().out
    model = tf.AutoModelForSequenceClassification.from_pretrained(out)
    original = tf.AutoModelForSequenceClassification.from_pretrained(tiny_model("classifier"))
    assert not torch.allclose(model.classifier.weight, original.classifier.weight)
    # intersectional groups and head refit
    out2 = tmp_path / "erased2"
    assert main([*argv[:-1], "gender,age", "--refit-head", "--method", "orth", "--output", str(out2)]) == 0
    report2 = json.loads((out2 / "erasure_report.json").read_text())
    assert len(report2["groups"]) == 4 and "refit_losses" in report2 and report2["method"] == "orth"


def test_erase_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    train = _data(tmp_path)
    argv = ["erase", "--model", tiny_model("classifier"), "--data", str(train), "--output", str(tmp_path / "o")]
    assert main([*argv, "--group-column", "race"]) == 2
    assert "fairtune erase:" in capsys.readouterr().err
    assert main([*argv, "--group-column", "gender", "--refit-head", "--label-column", "stars"]) == 2
    assert "--refit-head needs task labels" in capsys.readouterr().err


def test_thresholds_randomized_and_inferred_groups(tmp_path, capsys):
    from fairtune.posthoc.thresholds import load_thresholds, predict_with_thresholds

    model = tmp_path / "model"
    shutil.copytree(tiny_model("classifier"), model)
    val, test = _data(tmp_path), _data(tmp_path, "test.csv", seed=4)
    argv = [
        "thresholds",
        "--model",
        str(model),
        "--data",
        str(val),
        "--test-data",
        str(test),
        "--group-column",
        "gender",
    ]
    assert main([*argv, "--criterion", "demographic_parity", "--randomized", "--seed", "5", "--infer-groups"]) == 0
    th = load_thresholds(model)
    assert th["randomized"] and th["seed"] == 5 and th["criterion"] == "demographic_parity"
    assert set(th["rules"]) == {"female", "male"} and th["group_probe"]["classes"] == ["female", "male"]
    assert "inferred_groups" in th["effect"]["test"] and 0 <= th["effect"]["test"]["group_probe_accuracy"] <= 1
    assert "group_probe_accuracy" in capsys.readouterr().out
    # without groups at inference, the stored probe predicts them
    preds = predict_with_thresholds(str(model), ["she said her thing", "he said his thing"])
    assert set(preds.tolist()) <= {0, 1}


def test_thresholds_multiclass(tmp_path):
    import transformers as tf

    from fairtune.posthoc.thresholds import load_thresholds

    cfg, tok = _bert_config(num_labels=3)
    torch.manual_seed(0)
    model_dir = tmp_path / "mc"
    tf.BertForSequenceClassification(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    val = _data(tmp_path, classes=3)
    argv = ["thresholds", "--model", str(model_dir), "--data", str(val), "--group-column", "gender"]
    assert main(argv) == 0
    th = load_thresholds(model_dir)
    assert th["kind"] == "multiclass" and len(th["offsets"]["female"]) == 3
    effect = th["effect"]["validation"]
    assert effect["thresholds"]["equal_opportunity_difference"] <= effect["argmax"]["equal_opportunity_difference"]
    # `fairtune evaluate` applies the stored offsets: its numbers equal the fitted effect on the same data
    out = tmp_path / "eval"
    argv_eval = ["evaluate", "--suite", "group", "--model", str(model_dir), "--data", str(val), "--output", str(out)]
    assert main([*argv_eval, "--group-column", "gender", "--n-bootstrap", "0", "--no-progress"]) == 0
    details = json.loads((out / "results.json").read_text())["details"]["group"]
    metrics = details["metrics"]
    for key in ("accuracy", "equal_opportunity_difference", "demographic_parity_difference"):
        assert metrics[key] == pytest.approx(effect["thresholds"][key], abs=1e-9), key
        assert details["details"]["without_thresholds"][key] == pytest.approx(effect["argmax"][key], abs=1e-9)
    assert main([*argv, "--randomized"]) == 2


@pytest.mark.parametrize("bad", [["--group-column", "race"]])
def test_thresholds_bad_column(tmp_path, capsys, bad):
    model = tmp_path / "model"
    shutil.copytree(tiny_model("classifier"), model)
    assert main(["thresholds", "--model", str(model), "--data", str(_data(tmp_path)), *bad]) == 2
    assert "fairtune thresholds:" in capsys.readouterr().err
