"""`fairtune sweep --search optuna`: a multi-objective study on a tiny BERT, resumed from SQLite, Pareto front and
selection over trials; `--space` parsing and the errors that name the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import biased_rows, write_jsonl

from fairtune.cli import _sweep_split, main
from fairtune.selection import pareto_front
from fairtune.sweep import Dimension, parse_space

optuna = pytest.importorskip("optuna")


def _flags(model_dir: Path, tmp_path: Path) -> list[str]:
    train = write_jsonl(tmp_path / "train.jsonl", biased_rows(48, 0.9, seed=1))
    valid = write_jsonl(tmp_path / "valid.jsonl", biased_rows(32, 0.5, seed=2))
    return ["--model_name_or_path", str(model_dir), "--train_file", str(train), "--validation_file", str(valid),
            "--group_column", "gender", "--max_length", "24", "--per_device_train_batch_size", "16",
            "--learning_rate", "0.001", "--max_steps", "2", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "true", "--disable_tqdm", "true", "--logging_steps", "1", "--leakage_probe", "false"]  # fmt: skip


def test_optuna_search_end_to_end_resume_and_pareto(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "search"
    argv = ["sweep", "--search", "optuna", "--trials", "3", "--space", "eo_weight=log:0.01:10", "--seeds", "7,8",
            "--output", str(out), *_flags(tiny_bert_dir, tmp_path)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "sweep.json").read_text())
    search = summary["search"]
    assert search["engine"] == "optuna" and search["directions"] == ["maximize", "minimize"]
    assert (out / "optuna.db").is_file() and search["storage"].startswith("sqlite:///")
    complete = [t for t in search["trials"] if t["state"] == "COMPLETE"]
    assert len(complete) == 3
    for t in complete:  # every trial trained its value on both seeds, in directories named by the value
        w = t["params"]["eo_weight"]
        assert 0.01 <= float(w) <= 10
        for seed in (7, 8):
            run_dir = out / f"eo_weight-{w}__seed-{seed}"
            report = json.loads((run_dir / "fairness_report.json").read_text())
            cfg = json.loads((run_dir / "fairtune_config.json").read_text())
            assert cfg["eo_weight"] == pytest.approx(float(w)) and cfg["seed"] == seed
        runs = [r for r in summary["runs"] if r["params"] == {"eo_weight": w}]
        assert sorted(r["seed"] for r in runs) == [7, 8]
        means = [sum(r["metrics"][k] for r in runs) / 2 for k in ("accuracy", "tpr_gap_rms")]
        assert t["values"] == pytest.approx(means)  # the objective values are the seed means
        assert report["accuracy"] in [r["metrics"]["accuracy"] for r in runs]
    # The study's Pareto front is the non-dominated set of (accuracy up, gap down) over the trials.
    front = pareto_front([t["values"][0] for t in complete], [t["values"][1] for t in complete])
    values = {tuple(t["values"]) for t, f in zip(complete, front) if f}
    assert {tuple(t["values"]) for t in complete if t["number"] in search["pareto_trials"]} == values
    assert summary["selection"]["config"].startswith("eo_weight=")
    for name in ("sweep.md", "frontier.png", "selected_recipe.yaml"):
        assert (out / name).is_file(), name
    md = (out / "sweep.md").read_text()
    assert "Search: Optuna (tpe sampler" in md and "| trial | state |" in md

    # Resuming: the study already holds 3 complete trials, so nothing trains; asking for 4 runs one more trial.
    trained: list[str] = []
    from fairtune import pipeline

    real = pipeline.run_training

    def counting(*args, **kwargs):
        trained.append(args[2].output_dir)
        return real(*args, **kwargs)

    monkeypatch.setattr("fairtune.pipeline.run_training", counting)
    capsys.readouterr()
    assert main(argv) == 0
    assert trained == [] and "nothing to run" in capsys.readouterr().out
    argv4 = [a if a != "3" else "4" for a in argv]
    assert main(argv4) == 0
    again = json.loads((out / "sweep.json").read_text())
    assert len([t for t in again["search"]["trials"] if t["state"] == "COMPLETE"]) == 4
    new = [t for t in again["search"]["trials"] if t["number"] == 3][0]
    reused = new["params"] in [t["params"] for t in complete]
    assert len(trained) == (0 if reused else 2)  # only the new trial's seeds trained

    # The same study with another space is refused, naming the fix.
    capsys.readouterr()
    bad = [a if a != "eo_weight=log:0.01:10" else "eo_weight=log:0.1:10" for a in argv4]
    assert main(bad) == 2
    assert "was started with other settings" in capsys.readouterr().err


def test_optuna_storage_url_constraint_selection_and_nsga2(tiny_bert_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    out = tmp_path / "s"
    argv = ["sweep", "--search", "optuna", "--trials", "2", "--space", "dp_weight=float:0:2", "--sampler", "nsga2",
            "--storage", url, "--study-name", "team", "--output", str(out), "--select", "tpr_gap_rms<=10",
            *_flags(tiny_bert_dir, tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "shared.db").is_file() and not (out / "optuna.db").exists()
    study = optuna.load_study(study_name="team", storage=url)  # a second worker would join this study
    assert len(study.trials) == 2 and all(t.user_attrs["constraint_violation"] == [0.0] for t in study.trials)
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["search"]["sampler"] == "nsga2" and summary["search"]["study_name"] == "team"
    assert "subject to tpr_gap_rms<=10" in summary["selection"]["criterion"]
    best_acc = max(c["mean"]["accuracy"] for c in summary["configs"])
    chosen = next(c for c in summary["configs"] if c["name"] == summary["selection"]["config"])
    assert chosen["mean"]["accuracy"] == best_acc


def test_parse_space():
    space = parse_space(["eo_weight=log:0.01:10", "adversary_steps=int:1:5", "cda=cat:one_sided,two_sided",
                         "--learning-rate=float:1e-5:1e-4"])  # fmt: skip
    assert space["eo_weight"] == Dimension("eo_weight", "log", 0.01, 10.0)
    assert space["adversary_steps"].kind == "int" and space["cda"].choices == ("one_sided", "two_sided")
    assert space["learning_rate"].spec() == "learning_rate=float:1e-05:0.0001"
    trial = optuna.trial.FixedTrial({"eo_weight": 0.123456, "adversary_steps": 3, "cda": "two_sided"})
    assert space["eo_weight"].suggest(trial) == "0.1235"  # the flag value the run trains with
    assert space["adversary_steps"].suggest(trial) == "3" and space["cda"].suggest(trial) == "two_sided"
    for bad, msg in [
        ("eo_weight", "write KEY=log:LOW:HIGH"),
        ("eo_weight=log", "write KEY=log:LOW:HIGH"),
        ("eo_weight=exp:1:2", "write KEY=log:LOW:HIGH"),
        ("eo_weight=log:0:10", "needs LOW > 0"),
        ("eo_weight=float:2:1", "must be below HIGH"),
        ("eo_weight=float:a:1", "two numbers"),
        ("adversary_steps=int:1.5:4", "whole numbers"),
        ("cda=cat:two_sided", "two or more distinct"),
        ("seed=int:1:3", "sets `seed` itself"),
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_space([bad])
    with pytest.raises(ValueError, match="given twice"):
        parse_space(["eo_weight=log:0.1:1", "eo_weight=log:0.1:2"])


def test_optuna_flag_errors_exit_2(tmp_path, capsys):
    train = write_jsonl(tmp_path / "t.jsonl", biased_rows(8, 0.5))
    base = ["sweep", "--output", str(tmp_path / "s"), "--train_file", str(train)]
    assert main([*base, "--search", "optuna", "--space", "eo_weight=log:0.01:10"]) == 2
    assert "needs --trials" in capsys.readouterr().err
    assert main([*base, "--search", "optuna", "--trials", "2"]) == 2
    assert "at least one --space" in capsys.readouterr().err
    assert main([*base, "--search", "optuna", "--trials", "2", "--grid", "eo_weight=1"]) == 2
    assert "do not mix" in capsys.readouterr().err
    assert main([*base, "--grid", "eo_weight=1", "--trials", "2"]) == 2
    assert "need `--search optuna`" in capsys.readouterr().err
    assert main([*base, "--search", "optuna", "--trials", "2", "--space", "eo_wieght=log:0.01:1"]) == 2
    assert "did you mean 'eo_weight'" in capsys.readouterr().err
    assert main([*base, "--search", "optuna", "--trials", "2", "--space", "eo_weight=log:0.1:1",
                 "--storage", "redis://host"]) == 2  # fmt: skip
    assert "Optuna RDB URL" in capsys.readouterr().err
    known, rest = _sweep_split(["--search", "optuna", "--trials", "4", "--space", "eo_weight=log:0.01:10",
                                "--storage=sqlite:///x.db", "--study-name", "s", "--sampler", "nsga2", "--max_steps", "2"])  # fmt: skip
    assert rest == ["--max_steps", "2"] and len(known) == 11
