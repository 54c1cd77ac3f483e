"""Post-hoc rows of a sweep: thresholds cross-fitted on validation and LEACE folded after training, scored as runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_sweep import _flags

from fairtune.cli import main
from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds
from fairtune.posthoc_runs import crossfit_folds, parse_posthoc, threshold_predictions


def test_crossfit_folds_are_stratified_and_seeded():
    rng = np.random.default_rng(0)
    labels, groups = rng.integers(0, 2, 200), rng.integers(0, 3, 200)
    fold = crossfit_folds(labels, groups, 2, seed=4)
    assert np.array_equal(fold, crossfit_folds(labels, groups, 2, seed=4))
    for g in range(3):
        for y in range(2):
            cell = fold[(groups == g) & (labels == y)]
            assert abs(int((cell == 0).sum()) - int((cell == 1).sum())) <= 1  # every fold sees every cell


def test_cross_fitted_thresholds_never_decide_a_row_with_rules_fitted_on_it():
    rng = np.random.default_rng(1)
    n = 400
    groups, labels = rng.integers(0, 2, n), rng.integers(0, 2, n)
    pos = np.clip(0.3 + 0.4 * labels + 0.2 * groups + rng.normal(0, 0.2, n), 0, 1)
    probs = np.stack([1 - pos, pos], 1)
    groups[:5] = -1  # rows without a group keep the default rule
    pred, rules = threshold_predictions(probs, labels, groups, "equalized_odds", folds=2, seed=3)
    fold = crossfit_folds(labels, groups, 2, seed=3)
    for k in range(2):
        train, test = (fold != k) & (groups >= 0), fold == k
        by_hand = fit_thresholds(probs[train], labels[train], list(groups[train]), "equalized_odds")
        g = [int(v) if v >= 0 else None for v in groups[test]]
        assert np.array_equal(pred[test], apply_thresholds(probs[test], g, by_hand))
    assert set(rules["thresholds"]) == {"0", "1"}  # the stored rules: fitted on every row with a group


def test_parse_posthoc_names_the_unknown_method():
    assert parse_posthoc("thresholds, leace,leace") == ["thresholds", "leace"]
    with pytest.raises(ValueError, match=r"--posthoc: unknown method\(s\) \['inlp'\]"):
        parse_posthoc("leace,inlp")


def test_transfer_probe_is_what_leace_guarantees_under_shift():
    """Eraser fitted on rows where group and label agree; held-out rows where they are independent: a probe trained
    on the erased fitting rows stays at the held-out majority, a probe fitted on the held-out rows does not."""
    import torch
    from concept_erasure import LeaceFitter

    from fairtune.objectives.adversarial import leakage_probe, transfer_probe

    rng = np.random.default_rng(0)

    def rows(n, agree):
        g = rng.integers(0, 2, n)
        y = np.where(rng.random(n) < agree, g, 1 - g)
        x = np.stack([y + 0.3 * rng.normal(size=n), g + 0.3 * rng.normal(size=n), rng.normal(size=n)], 1)
        return x, g

    fx, fg = rows(2000, 0.95)
    hx, hg = rows(1000, 0.5)
    fitter = LeaceFitter(3, 2, dtype=torch.float64)
    fitter.update(torch.as_tensor(fx), torch.nn.functional.one_hot(torch.as_tensor(fg), 2).double())
    erase = fitter.eraser
    efx, ehx = erase(torch.as_tensor(fx)).numpy(), erase(torch.as_tensor(hx)).numpy()
    moved = transfer_probe(efx, fg, ehx, hg)
    assert moved["transfer_probe_accuracy"] <= moved["transfer_probe_majority_baseline"] + 0.02
    assert transfer_probe(fx, fg, hx, hg)["transfer_probe_accuracy"] > 0.9  # before erasure: decodable
    assert leakage_probe(ehx, hg)["leakage_probe_accuracy"] > 0.6  # the shift leaves signal on held-out rows


def test_sweep_posthoc_rows_equal_their_training_time_twins(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    """`--posthoc thresholds,leace`: a row per run and method; the LEACE row equals training with `erasure: leace`,
    the thresholds row keeps the run's representation (same leakage probe) and drops the counterfactual keys;
    a resumed sweep recomputes nothing."""
    flags = _flags(tiny_bert_dir, tmp_path)
    out = tmp_path / "sweep"
    argv = ["sweep", "--grid", "eo_weight=0", "--seeds", "1", "--output", str(out), "--posthoc", "thresholds,leace"]
    assert main([*argv, *flags]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    names = [c["name"] for c in summary["configs"]]
    assert names == ["eo_weight=0", "eo_weight=0 + thresholds", "eo_weight=0 + leace"]
    runs = {r["name"]: r for r in summary["runs"]}
    base, thr, lea = (runs[n] for n in ("eo_weight-0__seed-42", "eo_weight-0__seed-42+thresholds",
                                        "eo_weight-0__seed-42+leace"))  # fmt: skip
    assert all(r["status"] == "done" for r in (base, thr, lea))
    assert thr["metrics"]["leakage_probe_accuracy"] == pytest.approx(base["metrics"]["leakage_probe_accuracy"])
    thr_report = json.loads((Path(thr["output_dir"]) / "fairness_report.json").read_text())
    assert thr_report["posthoc_fitted_on"] == "validation (cross-fitted)" and "flip_rate" not in thr_report
    assert (Path(thr["output_dir"]) / "fairtune_thresholds.json").is_file()
    assert "--erasure leace" in lea["command"]
    sel = summary["selection"]
    assert sel["posthoc"] == "thresholds"  # on this tiny model the thresholds row has the smallest DTO
    md = (out / "sweep.md").read_text()  # the rules' directory holds no model: card and push use the base run
    assert f"fairtune card --model-dir {base['output_dir']}`" in md and "post-hoc (thresholds)" in md

    twin = tmp_path / "twin"
    assert (
        main(["train", *flags, "--eo_weight", "0", "--seed", "42", "--erasure", "leace", "--output_dir", str(twin)])
        == 0
    )
    twin_report = json.loads((twin / "fairness_report.json").read_text())
    for key in ("accuracy", "equalized_odds_difference", "tpr_gap_rms", "erasure_leakage_probe_after"):
        assert lea["metrics"][key] == pytest.approx(twin_report[key], abs=1e-6), key
    assert "erasure_transfer_probe_after" in twin_report
    cfg = json.loads((Path(lea["output_dir"]) / "fairtune_config.json").read_text())
    assert cfg["erasure"] == "leace" and cfg["posthoc_base"] == base["output_dir"]

    def no_work(*a, **k):
        raise AssertionError("a finished post-hoc row was computed again")

    monkeypatch.setattr("fairtune.posthoc_runs.posthoc_report", no_work)
    monkeypatch.setattr("fairtune.pipeline.run_training", no_work)
    capsys.readouterr()
    assert main([*argv, *flags]) in (0, 1)
    assert capsys.readouterr().out.count("already done") == 3


def test_posthoc_with_optuna_is_refused(tmp_path, capsys):
    argv = [
        "sweep",
        "--search",
        "optuna",
        "--trials",
        "2",
        "--space",
        "eo_weight=log:0.1:1",
        "--output",
        str(tmp_path),
    ]
    assert main([*argv, "--posthoc", "leace"]) == 2
    assert "--posthoc adds rows to a grid sweep" in capsys.readouterr().err


def test_thresholds_row_with_a_test_split_fits_on_validation_and_scores_test(tiny_bert_dir, tmp_path, monkeypatch):
    """With a test split (the report's split), the rules are fitted on all validation rows and applied to test: the
    scores it fits on and applies to are the model's on those splits, and the row equals fitting by hand."""
    from conftest import biased_rows, write_jsonl
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import fairtune.posthoc_runs as posthoc_runs
    from fairtune.evaluation.predict import classifier_probs
    from fairtune.metrics.group import group_fairness_metrics
    from fairtune.parser import parse_config

    test = write_jsonl(tmp_path / "test.jsonl", biased_rows(40, 0.5, seed=7))
    flags = [*_flags(tiny_bert_dir, tmp_path), "--test_file", str(test), "--output_dir", str(tmp_path / "run"),
             "--max_steps", "40", "--learning_rate", "0.003"]  # fmt: skip
    assert main(["train", *flags]) == 0
    seen = {}
    real = posthoc_runs.threshold_predictions

    def spy(probs, labels, groups, criterion, **kw):
        seen.update(probs=probs, labels=labels, groups=groups, fit=kw["fit"])
        return real(probs, labels, groups, criterion, **kw)

    monkeypatch.setattr(posthoc_runs, "threshold_predictions", spy)
    report = posthoc_runs.posthoc_report(*parse_config(None, flags), "thresholds")
    assert report["split"] == "test" and report["posthoc_fitted_on"] == "validation"

    cfg = json.loads((tmp_path / "run" / "fairtune_config.json").read_text())  # the run's label and group ids
    labels = {name: i for i, name in enumerate(cfg["label_list"])}
    ids = {name: i for i, name in enumerate(cfg["group_names"])}
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "run")
    fit_probs, fit_labels, fit_groups = seen["fit"]
    for split, file, probs, y, g in (("validation", "valid", fit_probs, fit_labels, fit_groups),
                                     ("test", "test", seen["probs"], seen["labels"], seen["groups"])):  # fmt: skip
        rows = [json.loads(x) for x in (tmp_path / f"{file}.jsonl").read_text().splitlines()]
        assert np.abs(classifier_probs(model, tok, [r["text"] for r in rows], max_length=24) - probs).max() < 1e-5
        assert list(y) == [labels[r["label"]] for r in rows] and list(g) == [ids[r["gender"]] for r in rows], split
    assert fit_probs[:, 1].std() > 0.05  # the model tells rows apart: the rules are not a tie-break
    rules = fit_thresholds(fit_probs, fit_labels, list(fit_groups), "equalized_odds")
    pred = apply_thresholds(seen["probs"], list(seen["groups"]), rules)
    by_hand = group_fairness_metrics(seen["labels"], pred, list(seen["groups"]), labels=[0, 1])
    for key in ("accuracy", "equalized_odds_difference", "demographic_parity_difference"):
        assert report[key] == pytest.approx(by_hand[key], abs=1e-9), key
