"""Every task adapter on an encoder and a decoder, full fine-tuning and LoRA, through the whole pipeline."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import biased_rows, make_tiny_bert, make_tiny_llama, write_jsonl

from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
from fairtune.pipeline import run_training

NAMES = {"female": ["mary", "linda", "patricia"], "male": ["john", "james", "robert"]}


def _ner_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        gender = "female" if i % 2 else "male"
        name = NAMES[gender][i % 3]
        rows.append(
            {
                "tokens": [name, "is", "a", "nurse", "at", "the", "hospital"],
                "ner_tags": ["B-person", "O", "O", "O", "O", "O", "B-location" if i % 3 else "O"],
                "gender": gender,
            }
        )
    return rows


def _qa_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        gender = "female" if i % 2 else "male"
        name = NAMES[gender][i % 3]
        context = f"{name} works at the hospital and reads books at the school"
        answer = "the hospital" if i % 2 else "the school"
        rows.append(
            {
                "id": f"q{i}",
                "question": f"where does {name} work" if i % 2 else f"where does {name} read",
                "context": context,
                "answers": {"text": [answer], "answer_start": [context.index(answer)]},
                "gender": gender,
            }
        )
    return rows


ROWS = {
    "classification": lambda: (biased_rows(32, 0.9, seed=1), biased_rows(16, 0.5, seed=2)),
    "ner": lambda: (_ner_rows(24), _ner_rows(12)),
    "qa": lambda: (_qa_rows(24), _qa_rows(12)),
}
# objectives each task supports: a group objective and the adversary on the pooled representation
OBJECTIVES = {
    "classification": {"eo_weight": 1.0, "adversary_weight": 0.5},
    "ner": {"group_dro_weight": 1.0, "adversary_weight": 0.5},
    "qa": {"loss_parity_weight": 1.0, "adversary_weight": 0.5},
}
TASK_METRIC = {"classification": "accuracy", "ner": "f1", "qa": "exact_match"}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("matrix")
    return {"bert": make_tiny_bert(base / "bert"), "llama": make_tiny_llama(base / "llama")}


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("arch", ["bert", "llama"])
@pytest.mark.parametrize("task", ["classification", "ner", "qa"])
def test_adapter_trains_evaluates_and_saves(task, arch, lora, model_dirs, tmp_path):
    train, validation = ROWS[task]()
    model_args = ModelArguments(
        model_name_or_path=str(model_dirs[arch]),
        task=task,
        use_peft=lora,
        lora_r=4,
        lora_target_modules=(["q_proj", "v_proj"] if arch == "llama" else ["query", "value"]) if lora else None,
    )
    data_args = DataArguments(
        train_file=str(write_jsonl(tmp_path / "train.jsonl", train)),
        validation_file=str(write_jsonl(tmp_path / "validation.jsonl", validation)),
        group_column="gender",
        max_length=32,
        doc_stride=8,
    )
    out = tmp_path / "run"
    training_args = FairTrainingArguments(
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        **OBJECTIVES[task],
    )
    results = run_training(model_args, data_args, training_args)
    val = results["validation"]
    assert TASK_METRIC[task] in val and "leakage_probe_accuracy" in val
    logs = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any("adversary_loss" in h for h in logs)
    saved = {p.name for p in out.iterdir()}
    assert ("adapter_model.safetensors" in saved) == lora and ("model.safetensors" in saved) != lora
    from safetensors.torch import load_file

    weights = load_file(str(out / ("adapter_model.safetensors" if lora else "model.safetensors")))
    assert weights and not any("adversary" in k for k in weights)
    if lora:
        assert any("lora_A" in k for k in weights)
    # the saved model reloads as a plain transformers / PEFT model and predicts
    from fairtune.tasks import get_adapter

    cls = get_adapter(task).model_class()
    if lora:
        from peft import PeftModel

        num_labels = {"classification": 2, "ner": 3, "qa": 2}[task]
        base = cls.from_pretrained(model_dirs[arch], num_labels=num_labels, ignore_mismatched_sizes=True)
        model = PeftModel.from_pretrained(base, out)
    else:
        model = cls.from_pretrained(out)
    with torch.no_grad():
        model.eval()(input_ids=torch.tensor([[2, 10, 11, 3]]))
