"""The joints: the caller's model stays plain, objectives come from a registry, adapters hold no state."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from conftest import biased_rows
from helpers import build_trainer
from transformers import AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from fairtune.cli import main
from fairtune.objectives import OBJECTIVES, FairBatch, Objective, register_objective, resolve_objectives


def _hooks(model) -> list:
    return [h for m in model.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())]


def _from_fairtune(hook) -> bool:
    fn = getattr(hook, "func", hook)
    return getattr(fn, "__module__", "").startswith("fairtune") or "fairtune" in getattr(fn, "__qualname__", "")


def test_callers_model_is_plain_after_training_with_the_adversary(tiny_bert_dir, tmp_path):
    trainer = build_trainer(
        tiny_bert_dir, biased_rows(32, 0.9), None, tmp_path, adversary_weight=1.0, adversary_steps=2, max_steps=3
    )
    model = trainer.model.task_model  # the object the caller passed, wrapped, never copied or changed
    fresh = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    assert type(model) is type(fresh)
    assert [n for n, _ in model.named_children()] == [n for n, _ in fresh.named_children()]  # no fairtune submodule
    # no fairtune hook (transformers installs its own output recorders once hidden states are asked for, as it
    # does for any caller: a fresh model asked the same way has the same ones)
    fresh(**{"input_ids": torch.tensor([[2, 5, 3]])}, output_hidden_states=True)
    assert not any(_from_fairtune(h) for h in _hooks(model)) and len(_hooks(model)) == len(_hooks(fresh))
    assert not any("adversary" in n for n, _ in model.named_modules())
    assert list(model.state_dict()) == list(fresh.state_dict())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # it did train
    batch = trainer.processing_class(["she is a nurse"], return_tensors="pt")
    out = model.eval()(**batch)
    assert type(out) is SequenceClassifierOutput and set(out.keys()) == {"logits"}
    model.save_pretrained(tmp_path / "own")  # the user's own save holds the model only
    from safetensors.torch import load_file

    assert set(load_file(str(tmp_path / "own" / "model.safetensors"))) == set(fresh.state_dict())
    # the trainer's wrapper holds the adversary; the caller's arguments were not rewritten
    assert trainer.model.adversary is trainer.adversary and trainer.args.label_names is None
    assert trainer.label_names == ["labels", "group", "pair_id", "is_cf"]


def test_registry_resolves_aliases_and_mappings(tmp_path):
    from fairtune.config import FairTrainingArguments

    args = FairTrainingArguments(
        output_dir=str(tmp_path), eo_weight=1.0, objectives={"mindiff": {"weight": 0.5, "mindiff_kernel": "laplacian"}}
    )
    active = resolve_objectives(args)
    assert list(active) == ["eo", "mindiff"]  # canonical order
    assert active["eo"][0] == 1.0 and active["mindiff"] == (
        0.5,
        {**active["mindiff"][1], "mindiff_kernel": "laplacian"},
    )
    with pytest.raises(ValueError, match="weight 2.0 there and 1.0 from `eo_weight`"):
        resolve_objectives(FairTrainingArguments(output_dir=str(tmp_path), eo_weight=1.0, objectives={"eo": 2}))
    with pytest.raises(ValueError, match="unknown objective 'e0'.*did you mean 'eo'"):
        resolve_objectives(FairTrainingArguments(output_dir=str(tmp_path), objectives="e0=1"))
    with pytest.raises(ValueError, match="`objective_modules`: cannot import 'no_such_module'"):
        resolve_objectives(FairTrainingArguments(output_dir=str(tmp_path), objective_modules=["no_such_module"]))
    with pytest.raises(ValueError, match="needs unknown|unknown batch fields"):

        @register_objective("bad_needs")
        class Bad(Objective):
            needs = ("logitz",)

    assert "bad_needs" not in OBJECTIVES


def test_every_builtin_objective_is_registered_with_its_card_text():
    from fairtune.objectives import objective_weight_fields

    assert objective_weight_fields() == {
        "dp_weight": "dp",
        "eo_weight": "eo",
        "mindiff_weight": "mindiff",
        "group_dro_weight": "group_dro",
        "loss_parity_weight": "loss_parity",
        "clp_weight": "clp",
        "adversary_weight": "adversary",
    } or set(objective_weight_fields().values()) == {
        "dp",
        "eo",
        "mindiff",
        "group_dro",
        "loss_parity",
        "clp",
        "adversary",
    }
    for name in ("dp", "eo", "mindiff", "group_dro", "loss_parity", "clp", "adversary"):
        cls = OBJECTIVES[name]
        entry = cls.card_entry({})
        assert entry["name"] and entry["description"].endswith(".") and cls.__doc__


def test_a_third_party_objective_trains_logs_and_reaches_the_card(tiny_bert_dir, biased_files, tmp_path):
    out = tmp_path / "run"
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": str(tiny_bert_dir),
                "train_file": str(biased_files["train"]),
                "validation_file": str(biased_files["validation"]),
                "group_column": "gender",
                "output_dir": str(out),
                "objective_modules": ["toy_objectives"],
                "objectives": {"toy_margin": {"weight": 0.5, "margin": 0.3}},
                "max_steps": 3,
                "logging_steps": 1,
                "per_device_train_batch_size": 16,
                "max_length": 32,
                "use_cpu": True,
                "save_strategy": "no",
                "report_to": "none",
                "disable_tqdm": True,
            }
        )
    )
    assert main(["train", str(recipe)]) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    logged = [h["toy_margin"] for h in state["log_history"] if "toy_margin" in h]
    assert len(logged) == 3 and all(v >= 0 for v in logged)
    config = json.loads((out / "fairtune_config.json").read_text())
    assert config["objectives"] == {"toy_margin": {"weight": 0.5, "margin": 0.3}}
    card = (out / "README.md").read_text()
    assert "Toy margin" in card and "objectives.toy_margin" in card and "Toy (2026)" in card


def test_objectives_see_only_the_batch_view():
    """An objective is pure math on a FairBatch: no task, no trainer."""
    eo = OBJECTIVES["eo"]()
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], requires_grad=True)
    batch = FairBatch(
        losses=torch.zeros(4), groups=torch.tensor([0, 0, 1, 1]), num_groups=2, labels=torch.tensor([1, 1, 1, 1]),
        probs=probs,
    )  # fmt: skip
    value, logs = eo(batch)
    assert value.item() == pytest.approx(abs((0.1 + 0.8) / 2 - (0.4 + 0.7) / 2)) and "eo_gap" in logs
    value.backward()
    assert probs.grad is not None


def test_train_help_lists_every_recipe_field(capsys, tmp_path):
    """`fairtune train --help` (and `fairtune train RECIPE --help`) print the HfArgumentParser's help."""
    import dataclasses

    from fairtune.parser import ARG_CLASSES

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fairtune train [RECIPE.yaml]")
    for cls in ARG_CLASSES:
        for f in dataclasses.fields(cls):
            if f.init:
                assert f"--{f.name}" in out, f.name
    assert "Soft equalized odds weight." in out and "Objectives by name" in out
    recipe = tmp_path / "r.yaml"
    recipe.write_text("eo_weight: 1\n")
    assert main(["train", str(recipe), "--help"]) == 0 and "--objective_modules" in capsys.readouterr().out


def test_the_saved_command_never_holds_a_token(tiny_bert_dir, biased_files, tmp_path, monkeypatch):
    """The pipeline's own record of the command line (when none is passed) is redacted too."""
    import sys

    from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
    from fairtune.pipeline import run_training

    monkeypatch.setattr(sys, "argv", ["fairtune", "train", "--hub_token", "hf_abcdefghijklmnop"])
    out = tmp_path / "run"
    run_training(
        ModelArguments(model_name_or_path=str(tiny_bert_dir)),
        DataArguments(train_file=str(biased_files["train"]), group_column="gender", max_length=32),
        FairTrainingArguments(output_dir=str(out), max_steps=1, save_strategy="no", report_to="none", use_cpu=True),
    )
    saved = (out / "fairtune_config.json").read_text()
    assert "hf_abcdefghijklmnop" not in saved and "<redacted>" in saved
