"""`fairtune sweep`: grid x seeds end to end on a tiny BERT, resuming, selection, outputs; grid and seed parsing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import biased_rows, write_jsonl

from fairtune.cli import _sweep_split, main
from fairtune.selection import dto, fairness_scores
from fairtune.sweep import accelerate_command, parse_grid, parse_seeds, plan_runs, split_values


def _flags(model_dir: Path, tmp_path: Path) -> list[str]:
    train = write_jsonl(tmp_path / "train.jsonl", biased_rows(48, 0.9, seed=1))
    valid = write_jsonl(tmp_path / "valid.jsonl", biased_rows(32, 0.5, seed=2))
    return ["--model_name_or_path", str(model_dir), "--train_file", str(train), "--validation_file", str(valid),
            "--group_column", "gender", "--max_length", "24", "--per_device_train_batch_size", "16",
            "--learning_rate", "0.001", "--max_steps", "3", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "true", "--disable_tqdm", "true", "--logging_steps", "1"]  # fmt: skip


def _expected_dto_config(summary: dict) -> str:
    """The configuration with the smallest fairlib DTO, recomputed from the runs' own reports."""
    by_config: dict[str, list[dict]] = {}
    for r in summary["runs"]:
        report = json.loads((Path(r["output_dir"]) / "fairness_report.json").read_text())
        by_config.setdefault(r["config"], []).append(report)
    names = list(by_config)
    acc = [sum(m["accuracy"] for m in by_config[n]) / 2 for n in names]
    gap = [sum(m["tpr_gap_rms"] for m in by_config[n]) / 2 for n in names]
    scores = dto(acc, fairness_scores(gap, "tpr_gap_rms"))
    return min(zip(scores, [-a for a in acc], names))[2]


def _means(summary: dict) -> dict[str, dict[str, float]]:
    return {c["name"]: c["mean"] for c in summary["configs"]}


def test_sweep_end_to_end_resume_and_select(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"seed": 7, "dp_weight": 0.0}))
    argv = ["sweep", str(recipe), "--grid", "eo_weight=0,5", "--seeds", "2", "--output", str(out),
            *_flags(tiny_bert_dir, tmp_path)]  # fmt: skip
    assert main(argv) == 0

    summary = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in summary["runs"]] == [
        "eo_weight-0__seed-7",
        "eo_weight-0__seed-8",
        "eo_weight-5__seed-7",
        "eo_weight-5__seed-8",
    ]
    assert all(r["status"] == "done" for r in summary["runs"])
    for r in summary["runs"]:  # each run is a normal output_dir with its own config
        cfg = json.loads((Path(r["output_dir"]) / "fairtune_config.json").read_text())
        assert cfg["seed"] == r["seed"] and cfg["eo_weight"] == float(r["params"]["eo_weight"])
        assert "fairtune train" in r["command"] and f"--seed {r['seed']}" in r["command"]
    assert [c["n"] for c in summary["configs"]] == [2, 2]
    c0 = summary["configs"][0]
    accs = [r["metrics"]["accuracy"] for r in summary["runs"][:2]]
    assert c0["mean"]["accuracy"] == pytest.approx(sum(accs) / 2)
    assert c0["std"]["accuracy"] == pytest.approx(abs(accs[0] - accs[1]) / math.sqrt(2))
    assert any(c["pareto"] for c in summary["configs"])

    sel = summary["selection"]
    assert sel["config"] == _expected_dto_config(summary)
    assert sel["run"] in next(c["runs"] for c in summary["configs"] if c["name"] == sel["config"])
    assert Path(sel["output_dir"], "model.safetensors").is_file()
    for name in ("sweep.md", "frontier.png", "selected_recipe.yaml"):
        assert (out / name).is_file(), name
    chosen = yaml.safe_load((out / "selected_recipe.yaml").read_text())
    assert chosen["seed"] == sel["seed"] and chosen["eo_weight"] == float(sel["params"]["eo_weight"])
    assert chosen["max_steps"] == 3 and chosen["output_dir"] == sel["output_dir"]
    md = (out / "sweep.md").read_text()
    assert "fairtune card --model-dir" in md and "| `eo_weight=5` | 2 |" in md
    assert main(["card", "--model-dir", sel["output_dir"]]) == 0  # the chosen run is a normal output_dir

    # Resuming: every report exists, nothing trains again; only the selection changes.
    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("fairtune.pipeline.run_training", no_training)
    means = _means(summary)
    worst_gap = max(m["tpr_gap_rms"] for m in means.values())
    capsys.readouterr()
    assert main([*argv, "--select", f"tpr_gap_rms<={worst_gap + 1e-9}"]) == 0
    assert "already done" in capsys.readouterr().out
    resumed = json.loads((out / "sweep.json").read_text())
    best = max(means, key=lambda n: (means[n]["accuracy"], -means[n]["tpr_gap_rms"]))
    assert resumed["selection"]["config"] == best
    assert "subject to tpr_gap_rms<=" in resumed["selection"]["criterion"]

    fairest = min(means, key=lambda n: means[n]["tpr_gap_rms"])
    gap = means[fairest]["tpr_gap_rms"]
    assert main([*argv, "--select", f"tpr_gap_rms<={gap + 1e-9}"]) == 0
    assert json.loads((out / "sweep.json").read_text())["selection"]["config"] == fairest

    capsys.readouterr()
    assert main([*argv, "--select", "tpr_gap_rms<=-1"]) == 1
    err = capsys.readouterr().err
    assert "no run satisfies tpr_gap_rms<=-1" in err and "the closest has" in err
    assert "No selection" in (out / "sweep.md").read_text()


def test_sweep_config_errors_exit_2(tmp_path, capsys):
    base = ["sweep", "--output", str(tmp_path / "s"), "--train_file", str(tmp_path / "t.jsonl")]
    assert main([*base, "--grid", "eo_wieght=1,2"]) == 2
    assert "did you mean 'eo_weight'" in capsys.readouterr().err
    assert main([*base, "--grid", "seed=1,2"]) == 2
    assert "use --seeds" in capsys.readouterr().err
    assert main([*base, "--grid", "eo_weight=1", "--select", "tpr_gap_rms=<0.1"]) == 2
    assert "cannot read the constraint" in capsys.readouterr().err
    assert main([*base, "--grid", "eo_weight=-1,1"]) == 2  # every run is validated before the first trains
    assert "weights must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_sweep_split_keeps_overrides_apart():
    known, rest = _sweep_split(
        ["--grid", "eo_weight=0,1", "--max_steps", "3", "--seeds=2", "--task-metric", "macro_f1", "--use_cpu"]
    )
    assert known == ["--grid", "eo_weight=0,1", "--seeds=2", "--task-metric", "macro_f1"]
    assert rest == ["--max_steps", "3", "--use_cpu"]


def test_parse_grid_and_seeds():
    assert parse_grid(["eo_weight=0,0.5,1", "--cda_axes=[gender,names],[gender]"]) == {
        "eo_weight": ["0", "0.5", "1"],
        "cda_axes": ["gender,names", "gender"],
    }
    assert split_values("1e-4, 5e-5") == ["1e-4", "5e-5"]
    for bad, msg in [
        ("eo_weight", "write KEY=V1,V2"),
        ("eo_weight=", "write KEY=V1,V2"),
        ("eo_weight=1,,2", "empty value"),
        ("eo_weight=1,1", "repeated"),
        ("cda_axes=[gender", "unbalanced"),
        ("output_dir=a,b", "use --output"),
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_grid([bad])
    with pytest.raises(ValueError, match="given twice"):
        parse_grid(["eo_weight=1", "eo_weight=2"])
    assert parse_seeds("3", 42) == [42, 43, 44]
    assert parse_seeds("5,1", 42) == [5, 1]
    for bad in ("0", "x", "1,1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad, 42)


def test_plan_runs_names_and_accelerate_command(tmp_path):
    runs = plan_runs({"eo_weight": ["0.5"], "cda_axes": ["gender,names"]}, [1, 2], tmp_path)
    assert [r.name for r in runs] == ["eo_weight-0.5__cda_axes-gender_names__seed-1", "eo_weight-0.5__cda_axes-gender_names__seed-2"]  # fmt: skip
    assert runs[0].config == "eo_weight=0.5 cda_axes=gender,names"
    tokens = runs[0].tokens(["--max_steps", "3"])
    assert tokens[:2] == ["--max_steps", "3"] and tokens[-4:] == [
        "--seed",
        "1",
        "--output_dir",
        str(runs[0].output_dir),
    ]
    cmd = accelerate_command("r.yaml", tokens, num_processes=2)
    assert cmd[1] == "launch" and "--multi_gpu" in cmd and cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("-m") : cmd.index("-m") + 4] == ["-m", "fairtune", "train", "r.yaml"]
    cfg = accelerate_command(None, tokens, config_file="recipes/accelerate_configs/cpu_ddp.yaml")
    assert "--config_file" in cfg and "--num_processes" not in cfg and cfg[-len(tokens) :] == tokens


def test_grid_values_with_exponents_are_floats(tmp_path):
    """`--grid learning_rate=1e-4,5e-5`: YAML 1.1 reads `1e-4` as a string; float fields must still get floats."""
    from fairtune.parser import parse_config

    runs = plan_runs(parse_grid(["learning_rate=1e-4,5e-5"]), [1], tmp_path)
    rates = [parse_config(None, r.tokens([]))[2].learning_rate for r in runs]
    assert rates == [1e-4, 5e-5]


def test_adversary_warmup_ratio_ramps_the_reversal(tiny_bert_dir, tmp_path):
    """`adversary_warmup_ratio: 0.5`: reversal strength 0 at the start, the full weight from half of training on."""
    from helpers import build_trainer

    trainer = build_trainer(
        tiny_bert_dir,
        biased_rows(32, 0.9, seed=1),
        output_dir=tmp_path / "run",
        adversary_weight=2.0,
        adversary_warmup_ratio=0.5,
        max_steps=8,
    )
    trainer.state.max_steps = 8
    strengths = []
    for step in (0, 2, 4, 8):
        trainer.state.global_step = step
        strengths.append(trainer._adversary_strength())
    assert strengths == pytest.approx([0.0, 1.0, 2.0, 2.0])
    trainer.train()
    logged = [h["adversary_strength"] for h in trainer.state.log_history if "adversary_strength" in h]
    assert logged[0] == pytest.approx(0.0) and logged[-1] == pytest.approx(2.0)


def test_finished_run_with_other_settings_is_stale(tmp_path):
    """Resuming reuses a run only when its saved config agrees with every field the recipe and flags set."""
    from fairtune.sweep import _is_current

    run = plan_runs({"eo_weight": ["1"]}, [3], tmp_path)[0]
    run.output_dir.mkdir(parents=True)
    (run.output_dir / "fairtune_config.json").write_text(json.dumps({"eo_weight": 1.0, "seed": 3, "max_steps": 5}))
    assert _is_current(run, {"eo_weight": 1.0, "seed": 3, "max_steps": 5})
    assert not _is_current(run, {"eo_weight": 1.0, "seed": 3, "max_steps": 50})
    # numbers compare by value: a run saved `warmup_steps: 5`, a newer parser reads the flag as 5.0
    (run.output_dir / "fairtune_config.json").write_text(json.dumps({"warmup_steps": 5, "use_cpu": True}))
    assert _is_current(run, {"warmup_steps": 5.0, "use_cpu": True})
    assert not _is_current(run, {"warmup_steps": 5.5})
    assert not _is_current(run, {"use_cpu": 1})  # a bool is not the number 1


def test_readme_sweep_commands_parse(tmp_path):
    """Every `fairtune sweep` command in README.md and recipes/sweeps/README.md parses (with its post-hoc methods),
    and so does each run it plans."""
    import re
    import shlex

    from fairtune.cli import build_parser
    from fairtune.parser import parse_config
    from fairtune.posthoc_runs import parse_posthoc

    repo = Path(__file__).resolve().parents[1]
    text = "\n".join((repo / f).read_text() for f in ("README.md", "recipes/sweeps/README.md")).replace("\\\n", " ")
    commands = [shlex.split(m, comments=True) for m in re.findall(r"^(fairtune sweep .+)$", text, flags=re.M)]
    assert len(commands) >= 5 and any("--posthoc" in c for c in commands)
    for recipe in (repo / "recipes" / "sweeps").glob("*.yaml"):
        parse_config(recipe, [])
    for argv in commands:
        argv = argv[1:]
        known, rest = _sweep_split(argv[2:])
        args = build_parser().parse_args(argv[:2] + known)
        assert (repo / args.recipe).is_file(), args.recipe
        parse_posthoc(args.posthoc)
        for run in plan_runs(parse_grid(args.grid), parse_seeds(args.seeds, 42), tmp_path):
            parse_config(repo / args.recipe, [*rest, *run.tokens([])[:-2]])


def test_frontier_error_bars_stay_inside_the_seed_range():
    from fairtune.sweep import _clipped_spread

    config = {"mean": {"gap": 0.2}, "std": {"gap": 0.3}, "min": {"gap": 0.0}, "max": {"gap": 0.6}}
    (low,), (high,) = _clipped_spread(config, "gap")
    assert low == pytest.approx(0.2) and high == pytest.approx(0.3)  # never drawn below the best seed (0)
    one = {"mean": {"gap": 0.2}, "std": {"gap": 0.0}, "min": {"gap": 0.2}, "max": {"gap": 0.2}}
    assert _clipped_spread(one, "gap") == [[0.0], [0.0]]


def test_sweep_run_commands_never_hold_a_token():
    from fairtune.sweep import _train_command

    cmd = _train_command("r.yaml", ["--hub_token", "hf_secretvalue123", "--eo_weight", "1"])
    assert "hf_secretvalue123" not in cmd and "<redacted>" in cmd and "--eo_weight 1" in cmd


def test_the_library_sweep_logs_instead_of_printing(monkeypatch, capsys):
    import inspect

    from fairtune import sweep

    assert inspect.signature(sweep.run_sweep).parameters["log"].default is None
    assert inspect.signature(sweep.run_search).parameters["log"].default is None
