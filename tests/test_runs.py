"""Output directories, launch configs, secrets in saved commands, and what `fairtune train` tells the user."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from fairtune.cards.secrets import redact_command
from fairtune.errors import FairtuneError
from fairtune.launch_check import CPU_CONFIG, check_launch, check_launch_config, launch_config_problems
from fairtune.runs import check_output_dir, checkpoints, config_differences, resume_flag

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "accelerate_configs"


def targs(out, **kw):
    return SimpleNamespace(
        **{"output_dir": str(out), "resume_from_checkpoint": None, "overwrite_output_dir": False, **kw}
    )


def make_run(root: Path, steps=(1,), **config) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for step in steps:
        (root / f"checkpoint-{step}").mkdir()
        (root / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (root / "fairtune_config.json").write_text(json.dumps({"eo_weight": 0.0, "learning_rate": 1e-3, **config}))
    return root


# ---- output dir ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [(None, None), (False, None), (True, True), ("true", True), ("True", True), ("false", None), ("", None)],
)
def test_resume_flag_reads_booleans_not_paths(value, expected):
    assert resume_flag(value) is expected
    assert resume_flag("out/checkpoint-5") == "out/checkpoint-5"


def test_fresh_and_nested_output_dirs_pass(tmp_path):
    assert check_output_dir(targs(tmp_path / "a" / "b")) is None
    (tmp_path / "empty").mkdir()
    assert check_output_dir(targs(tmp_path / "empty")) is None
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "notes.txt").write_text("x")  # files that are not a run do not block
    assert check_output_dir(targs(tmp_path / "logs")) is None


def test_existing_run_refused_unless_overwrite(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(FairtuneError, match=r"already holds a run \(fairtune_config\.json; 1 checkpoint\(s\), latest"):
        check_output_dir(targs(run))
    assert check_output_dir(SimpleNamespace(output_dir=str(run), overwrite_output_dir=True)) is None


def test_unwritable_output_dir(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(FairtuneError, match=r"`output_dir`: .*new \(its nearest existing parent .*\) is not writable"):
        check_output_dir(targs(tmp_path / "new"))


def test_resume_true_takes_the_latest_checkpoint_by_step(tmp_path):
    run = make_run(tmp_path / "run", steps=(2, 10, 9))
    assert [p.name for p in checkpoints(run)] == ["checkpoint-2", "checkpoint-9", "checkpoint-10"]
    same = {"eo_weight": 0.0, "learning_rate": 1e-3, "output_dir": "elsewhere", "command": "other"}
    assert check_output_dir(targs(run, resume_from_checkpoint="true"), same) == str(run / "checkpoint-10")


def test_resume_refuses_another_config_and_names_the_keys(tmp_path):
    run = make_run(tmp_path / "run")
    other = {"eo_weight": 1.0, "learning_rate": 1e-3}
    with pytest.raises(FairtuneError, match=r"another configuration: eo_weight \(0\.0 -> 1\.0\)"):
        check_output_dir(targs(run, resume_from_checkpoint=True), other)
    with pytest.raises(FairtuneError, match=r"eo_weight"):  # a checkpoint path is compared with its run's config
        check_output_dir(targs(tmp_path / "new", resume_from_checkpoint=str(run / "checkpoint-1")), other)
    assert config_differences({"a": 1, "command": "x", "max_steps": 5}, {"a": 1, "command": "y", "max_steps": 9}) == []


def test_resume_path_checks(tmp_path):
    with pytest.raises(FairtuneError, match="is not a checkpoint folder"):
        check_output_dir(targs(tmp_path, resume_from_checkpoint=str(tmp_path / "nope")))
    (tmp_path / "c").mkdir()
    with pytest.raises(FairtuneError, match="no trainer_state.json"):
        check_output_dir(targs(tmp_path, resume_from_checkpoint=str(tmp_path / "c")))
    with pytest.raises(FairtuneError, match="has no checkpoint-\\* folder"):
        check_output_dir(targs(tmp_path / "fresh", resume_from_checkpoint="true"))


# ---- launch --------------------------------------------------------------------------------------------------
DDP_ENV = {"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "8", "ACCELERATE_MIXED_PRECISION": "bf16"}


def test_plain_run_is_not_checked():
    check_launch(environ={}, gpus=0)


def test_gpu_launch_on_a_cpu_machine_names_cpu_ddp():
    with pytest.raises(FairtuneError, match=rf"8 GPU process.*no GPU.*mixed precision bf16.*{CPU_CONFIG}.*--use_cpu"):
        check_launch(environ=DDP_ENV, gpus=0, cpus=16)


def test_cpu_launch_fits_and_too_many_processes_do_not():
    cpu_env = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "ACCELERATE_MIXED_PRECISION": "no"}
    check_launch(use_cpu=True, environ=cpu_env, gpus=0, cpus=1)  # two processes on one core: slower, not wrong
    many = {"WORLD_SIZE": "64", "LOCAL_WORLD_SIZE": "64"}
    with pytest.raises(FairtuneError, match="starts 64 CPU processes on 2 cores"):
        check_launch(use_cpu=True, environ=many, gpus=0, cpus=2)
    with pytest.raises(FairtuneError, match="only 2 GPU.*at most 2"):
        check_launch(environ=DDP_ENV, gpus=2)
    check_launch(environ=DDP_ENV, gpus=8)


def test_sharded_and_fp16_on_cpu_are_refused():
    env = {"WORLD_SIZE": "2", "ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_MIXED_PRECISION": "fp16"}
    with pytest.raises(FairtuneError, match="DEEPSPEED shards over GPUs.*fp16 is not available on CPU"):
        check_launch(use_cpu=True, environ=env, gpus=0, cpus=8)


def test_recipe_configs_against_machines():
    assert launch_config_problems(CONFIGS / "ddp.yaml", gpus=8) == []
    assert launch_config_problems(CONFIGS / "ddp.yaml", gpus=0)
    assert launch_config_problems(CONFIGS / "cpu_ddp.yaml", gpus=0, cpus=2, use_cpu=True) == []
    assert launch_config_problems(CONFIGS / "fsdp.yaml", gpus=0, use_cpu=True)
    with pytest.raises(FairtuneError, match=r"ddp\.yaml does not fit this machine.*at most 4"):
        check_launch_config(CONFIGS / "ddp.yaml", gpus=4)


def test_check_launch_command(monkeypatch, capsys):
    from fairtune import launch_check
    from fairtune.cli import main

    monkeypatch.setattr(launch_check, "_gpu_count", lambda: 0)
    assert main(["check-launch", str(CONFIGS / "cpu_ddp.yaml"), "--use-cpu"]) == 0
    assert "fits this machine" in capsys.readouterr().out
    assert main(["check-launch", str(CONFIGS / "deepspeed_zero3.yaml")]) == 2
    assert "cpu_ddp.yaml" in capsys.readouterr().err


# ---- secrets -------------------------------------------------------------------------------------------------
def test_redact_command():
    token = "hf_" + "a1B2" * 6
    argv = ["fairtune", "train", "r.yaml", "--hub_token", token, "--hub-token=abc", "--token", "xyz"]
    argv += ["--note", f"url:{token}", "HF_TOKEN=secret", "--push_to_hub", "true", "--token"]
    assert redact_command(argv) == [
        "fairtune",
        "train",
        "r.yaml",
        "--hub_token",
        "<redacted>",
        "--hub-token=<redacted>",
        "--token",
        "<redacted>",
        "--note",
        "url:<redacted>",
        "HF_TOKEN=<redacted>",
        "--push_to_hub",
        "true",
        "--token",
    ]
    assert redact_command(["--learning_rate", "hf_short"]) == ["--learning_rate", "hf_short"]


def test_token_never_reaches_the_saved_config_and_the_summary_is_printed(tmp_path, tiny_bert_dir, capsys):
    """A token passed as --hub_token is not in fairtune_config.json; the run ends with a summary."""
    from conftest import biased_rows, write_jsonl

    from fairtune.cli import main

    token = "hf_" + "Zq9" * 8
    train = write_jsonl(tmp_path / "t.jsonl", biased_rows(16, 0.5))
    out = tmp_path / "out"
    argv = ["train", "--model_name_or_path", str(tiny_bert_dir), "--train_file", str(train)]
    argv += ["--validation_file", str(train), "--group_column", "gender", "--output_dir", str(out)]
    argv += ["--max_steps", "1", "--use_cpu", "true", "--save_strategy", "no", "--report_to", "none"]
    assert main([*argv, "--disable_tqdm", "true", "--hub_token", token]) == 0
    written = "".join(
        p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file() and p.suffix != ".safetensors"
    )
    assert token not in written
    config = json.loads((out / "fairtune_config.json").read_text())
    assert "--hub_token '<redacted>'" in config["command"] or "--hub_token <redacted>" in config["command"]
    stdout = capsys.readouterr().out
    assert f"fairtune train: done. Output: {out}" in stdout
    assert f"model:  {out / 'model.safetensors'}" in stdout and f"report: {out / 'fairness_report.md'}" in stdout
    assert "validation (16 examples):" in stdout and "tpr_gap_rms" in stdout


def test_render_summary_with_baseline_and_span_metrics(tmp_path):
    from fairtune.cli.train import render_summary

    text = render_summary(
        {
            "output_dir": str(tmp_path),
            "train": {"train_loss": 0.5, "train_runtime": 2.0},
            "test": {"f1": 71.5, "exact_match": 60.0, "f1_gap": 4.0},
            "baseline": {"f1": 70.0, "f1_gap": 9.0},
        }
    )
    assert "model:  (not written)" in text and "train loss 0.5000 in 2.0000 s" in text
    assert "f1_gap" in text and "4.0000  (baseline 9.0000)" in text and "test:" in text
    assert "no validation or test split" in render_summary({"output_dir": str(tmp_path)})


# ---- quiet CLI -----------------------------------------------------------------------------------------------
def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("transformers.modeling_utils", logging.WARNING, "x", 1, message, None, None)


def test_head_report_filter_drops_only_expected_head_reports():
    from fairtune.cli.train import ExpectedHeadReportFilter

    f = ExpectedHeadReportFilter()
    head = (
        "\x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m from: m\nKey | Status | \n"
        "cls.predictions.bias | UNEXPECTED | \nclassifier.weight | MISSING | \nbert.pooler.dense.bias | MISSING | "
    )
    assert f.filter(_record(head)) is False
    body = head + "\nbert.encoder.layer.0.attention.self.query.weight | MISSING | "
    assert f.filter(_record(body)) is True  # an encoder weight missing is news: kept
    assert f.filter(_record("some other warning")) is True


def test_quiet_hides_the_cpu_pin_memory_warning():
    from fairtune.cli.train import quiet_expected_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_expected_warnings()
        warnings.warn(
            "'pin_memory' argument is set as true but no accelerator is found, then device pinned memory won't be "
            "used.",
            stacklevel=1,
        )
        warnings.warn("another warning", stacklevel=1)
    assert [str(w.message) for w in caught] == ["another warning"]


def test_resume_true_continues_the_same_run_and_refuses_a_changed_one(tmp_path, tiny_bert_dir, capsys):
    """`--resume_from_checkpoint true` (a string on the command line) resumes the run's latest checkpoint when the
    recipe is the same, and names the changed key when it is not."""
    from conftest import biased_rows, write_jsonl

    from fairtune.cli import main

    train = write_jsonl(tmp_path / "t.jsonl", biased_rows(16, 0.5))
    out = tmp_path / "out"
    argv = ["train", "--model_name_or_path", str(tiny_bert_dir), "--train_file", str(train), "--output_dir", str(out)]
    argv += ["--group_column", "gender", "--use_cpu", "true", "--report_to", "none", "--disable_tqdm", "true"]
    argv += ["--per_device_train_batch_size", "8", "--save_strategy", "steps", "--save_steps", "1"]
    assert main([*argv, "--max_steps", "2"]) == 0
    assert [p.name for p in checkpoints(out)] == ["checkpoint-1", "checkpoint-2"]
    capsys.readouterr()
    assert main([*argv, "--max_steps", "2", "--eo_weight", "0.5", "--resume_from_checkpoint", "true"]) == 2
    assert "another configuration: eo_weight (0.0 -> 0.5)" in capsys.readouterr().err
    assert main([*argv, "--max_steps", "3", "--resume_from_checkpoint", "true"]) == 0
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert main([*argv, "--max_steps", "3"]) == 2  # a third run without resume or overwrite is refused
    assert "already holds a run" in capsys.readouterr().err
