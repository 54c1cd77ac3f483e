"""Exactness across processes: 2 CPU processes (gloo) against 1 process at twice the per-device batch.

The multi-process tests launch `accelerate launch --multi_gpu --num_processes 2` (on a machine without CUDA this
starts 2 CPU processes; the scripts run the Trainer with `use_cpu`, so accelerate uses gloo). Scripts live in
`tests/dist_scripts/` and write their results as JSON from rank 0.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from dist_scripts.tiny_models import make_tiny_decoder
from safetensors.torch import load_file

from fairtune.distributed import (
    all_sum,
    even_batches_real_rows,
    gather_sizes,
    gather_with_grad,
    padding_keep_mask,
    rank,
    world_size,
)

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "dist_scripts"
VENV_BIN = Path(sys.executable).parent
ACCELERATE = str(VENV_BIN / "accelerate") if (VENV_BIN / "accelerate").exists() else "accelerate"
CONFIGS = REPO / "recipes" / "accelerate_configs"
TOL = 1e-5

# Trainer/representation fixes proposed in issue 7 (see its report); these tests show they are needed.


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], cwd: Path = REPO) -> subprocess.Popen:
    """Start `accelerate launch --multi_gpu --num_processes 2 ...` (2 CPU processes here)."""
    cmd = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *args]  # fmt: skip
    return subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _single(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _wait(proc: subprocess.Popen, timeout: int = 240) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-6000:]


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory) -> Path:
    """A tiny random Llama classifier with a working word-level tokenizer."""
    return make_tiny_decoder(tmp_path_factory.mktemp("dist_llama"), "llama")


def _max_diff(a: list[float], b: list[float]) -> float:
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


# ---- multi-process --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.xdist_group("distributed")
def test_objectives_and_gradients_match_one_big_batch(decoder_dir, tmp_path):
    """Every objective, on a batch where both ranks see both groups (`mixed`) and where rank 0 sees one group only
    (`skewed`): values, logs and gradients on 2 processes equal one process with the whole batch."""
    script = str(SCRIPTS / "objectives_exact.py")
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    procs = [_single([script, str(decoder_dir), str(one)]), _launch([script, str(decoder_dir), str(two)])]
    for p in procs:
        _wait(p)
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a["world_size"] == 1 and b["world_size"] == 2
    cases = [k for k in a if "/" in k and not k.startswith("per_process/")]
    assert len(cases) == 22
    for case in cases:
        x, y = a[case], b[case]
        assert x["counts"] == y["counts"], case
        assert abs(x["loss"] - y["loss"]) < TOL, (case, x["loss"], y["loss"])
        assert x["logs"].keys() == y["logs"].keys(), case
        for key, value in x["logs"].items():
            assert abs(value - y["logs"][key]) < TOL, (case, key, value, y["logs"][key])
        assert x["grads"].keys() == y["grads"].keys(), case
        for name, grad in x["grads"].items():
            assert _max_diff(grad, y["grads"][name]) < TOL, (case, name)
        if "adversary" in case:
            assert any(n.startswith("adversary.") for n in x["grads"]), case
    # The objectives are not trivially equal: they are non-zero where they should be, and a per-process
    # (non-gathered) computation differs on the skewed batch, where rank 0 holds a single group.
    for name, key in (("dp", "dp_gap"), ("eo", "eo_gap"), ("loss_parity", "loss_parity"), ("mindiff", "mindiff_mmd")):
        assert a[f"skewed/{name}"]["logs"][key] > 1e-3, name
        naive = b[f"per_process/{name}"]
        assert max(_max_diff(g, a[f"skewed/{name}"]["grads"][n]) for n, g in naive["grads"].items()) > 1e-3, name
    assert a["mixed/clp"]["logs"]["clp"] > 1e-3 and a["mixed/clp"]["logs"]["clp_pairs"] == 4


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.xdist_group("distributed")
def test_rows_repeated_by_even_batches_are_not_counted(decoder_dir, tmp_path):
    """20 rows, global batch 8: accelerate completes the last round with 4 rows from the epoch's start. After one
    epoch of SGD the weights equal those of one process that sees each row once."""
    script = str(SCRIPTS / "train_padding.py")
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    procs = [_single([script, str(decoder_dir), str(one), "20"]), _launch([script, str(decoder_dir), str(two), "20"])]
    for p in procs:
        _wait(p)
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert [h["task_loss"] for h in a["logs"]] == pytest.approx([h["task_loss"] for h in b["logs"]], abs=TOL)
    for name, value in a["params"].items():
        assert _max_diff(value, b["params"][name]) < TOL, name


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.xdist_group("distributed")
def test_ddp_training_with_adversary_end_to_end(decoder_dir, tmp_path):
    """`accelerate launch -m fairtune train` on 2 processes with the adversary and DP: the saved model holds no
    adversary weights, the checkpoint holds the adversary file, and both processes trained one model."""
    from conftest import biased_rows, write_jsonl

    train = write_jsonl(tmp_path / "train.jsonl", biased_rows(36, 0.9, seed=1))
    valid = write_jsonl(tmp_path / "valid.jsonl", biased_rows(16, 0.5, seed=2))
    out = tmp_path / "run"
    args = ["-m", "fairtune", "train", "--model_name_or_path", str(decoder_dir), "--train_file", str(train),
            "--validation_file", str(valid), "--group_column", "gender", "--output_dir", str(out), "--use_cpu", "true",
            "--per_device_train_batch_size", "8", "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "4",
            "--adversary_weight", "1.0", "--dp_weight", "1.0", "--logging_steps", "1", "--max_length", "24",
            "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    _wait(_launch(args))
    weights = load_file(str(out / "model.safetensors"))
    assert weights and not any("fairtune_adversary" in k for k in weights)
    ckpt = out / "checkpoint-4"
    adv = load_file(str(ckpt / "fairtune_adversary.safetensors"))
    assert adv and all(not k.startswith("fairtune_adversary.") for k in adv)
    assert not any("fairtune_adversary" in k for k in load_file(str(ckpt / "model.safetensors")))
    assert (ckpt / "rng_state_0.pth").exists() and (ckpt / "rng_state_1.pth").exists()  # really 2 processes
    state = json.loads((ckpt / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "adversary_loss" in h]
    assert len(logged) == 4 and all(0 <= h["adversary_accuracy"] <= 1 for h in logged)


# ---- single process (fast) ------------------------------------------------------------------------------------
def test_helpers_are_identity_on_one_process():
    x = torch.randn(3, 2, requires_grad=True)
    assert world_size() == 1 and rank() == 0
    assert gather_with_grad(x) is x
    assert torch.equal(all_sum(torch.tensor([2.0])), torch.tensor([2.0]))
    assert gather_sizes(5) == [5]
    assert padding_keep_mask(4, 2).tolist() == [True] * 4  # a single process is never padded by accelerate


class _State:
    def __init__(self, end: bool, remainder: int) -> None:
        self.end_of_dataloader, self.remainder = end, remainder


def test_even_batches_real_rows():
    assert even_batches_real_rows(None) is None
    assert even_batches_real_rows(_State(False, 3)) is None  # not the last batch
    assert even_batches_real_rows(_State(True, 0)) is None  # dataset divides evenly: nothing repeated
    assert even_batches_real_rows(_State(True, -1)) is None  # unknown (no length)
    assert even_batches_real_rows(_State(True, 3)) == 3


@pytest.mark.parametrize("n_rows,batch,procs", [(20, 4, 2), (10, 4, 2), (13, 3, 4), (5, 4, 2), (3, 2, 4)])
def test_even_batches_puts_real_rows_first_in_rank_order(n_rows, batch, procs):
    """The assumption behind `padding_keep_mask`: in the last round accelerate yields, the first
    `n_rows % (batch * procs)` rows in rank order are the epoch's unseen rows, and the rest are repeats."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler, SequentialSampler

    sampler = BatchSampler(SequentialSampler(range(n_rows)), batch, drop_last=False)
    shards = [list(BatchSamplerShard(sampler, procs, r, even_batches=True)) for r in range(procs)]
    rounds = len(shards[0])
    assert all(len(s) == rounds for s in shards)
    seen = [i for k in range(rounds - 1) for s in shards for i in s[k]]
    last = [i for s in shards for i in s[-1]]
    real = n_rows % (batch * procs)
    assert real > 0
    assert sorted(seen + last[:real]) == list(range(n_rows))  # every row exactly once ...
    assert set(last[real:]) <= set(seen + last[:real])  # ... and the padding only repeats rows


# ---- launch configurations ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3", "cpu_ddp"])
def test_accelerate_configs_parse(name):
    """Each recipe config loads with accelerate's own config loader (no GPU needed to parse)."""
    from accelerate.commands.config.config_args import load_config_from_file

    path = CONFIGS / f"{name}.yaml"
    cfg = load_config_from_file(str(path))
    raw = yaml.safe_load(path.read_text())
    assert cfg.num_processes == raw["num_processes"]
    kind = str(cfg.distributed_type).split(".")[-1]
    expected = {"ddp": "MULTI_GPU", "cpu_ddp": "MULTI_GPU", "fsdp": "FSDP"}.get(name, "DEEPSPEED")
    assert kind == expected, (name, kind)
    if name == "fsdp":
        assert cfg.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
        assert cfg.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    if name.startswith("deepspeed"):
        assert cfg.deepspeed_config["zero_stage"] == int(name[-1])


def test_readme_names_every_config_and_recipe():
    """Every accelerate config and recipe folder appears in recipes/README.md (commands must not drift)."""
    text = (REPO / "recipes" / "README.md").read_text()
    for path in CONFIGS.glob("*.yaml"):
        assert f"accelerate_configs/{path.name}" in text, path.name
    for path in (REPO / "recipes" / "classification").glob("*lora*.yaml"):
        assert f"classification/{path.name}" in text, path.name
