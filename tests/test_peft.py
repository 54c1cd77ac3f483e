"""LoRA on decoder LLMs: wrapping, what trains, the adversary beside PEFT, saving and reloading, pooling, recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import biased_rows
from datasets import Dataset, DatasetDict
from dist_scripts.tiny_models import make_tiny_decoder
from safetensors.torch import load_file

from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
from fairtune.data import encode_datasets
from fairtune.peft_utils import check_4bit_support, lora_config, trainable_parameter_names, wrap_with_lora
from fairtune.pipeline import load_model, load_tokenizer
from fairtune.tasks.classification import ClassificationAdapter
from fairtune.trainer import FairTrainer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    return make_tiny_decoder(tmp_path_factory.mktemp("peft_llama"), "llama")


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    """GPT-2 style: a tokenizer with an EOS and no pad token, a model config without `pad_token_id`."""
    return make_tiny_decoder(tmp_path_factory.mktemp("peft_gpt2"), "gpt2", pad=False)


def _model_args(path: Path, **kw) -> ModelArguments:
    return ModelArguments(model_name_or_path=str(path), use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0, **kw)


def _lora_trainer(model_dir: Path, out: Path, **arg_kwargs) -> FairTrainer:
    """A FairTrainer over a LoRA model loaded the way `fairtune train` loads it."""
    adapter = ClassificationAdapter()
    kwargs = dict(
        output_dir=str(out), per_device_train_batch_size=8, learning_rate=5e-2, max_steps=3, logging_steps=1,
        save_strategy="no", report_to="none", use_cpu=True, seed=0, disable_tqdm=True, adversary_weight=1.0,
        adversary_hidden_size=16, adversary_lr=5e-2, dp_weight=1.0, min_group_count=0,
    )  # fmt: skip
    args = FairTrainingArguments(**{**kwargs, **arg_kwargs})
    data_args = DataArguments(group_column="gender", max_length=24)
    raw = DatasetDict({"train": Dataset.from_list(biased_rows(32, 0.9, seed=4))})
    encoded, enc = encode_datasets(raw, data_args, args)
    model_args = _model_args(model_dir)
    tok = load_tokenizer(model_args)
    model = load_model(model_args, adapter, tok, enc.label_list)
    train = adapter.preprocess(encoded["train"], tok, data_args, "train")
    return FairTrainer(
        model=model, args=args, task_adapter=adapter, group_names=enc.group_names, label_list=enc.label_list,
        train_dataset=train, processing_class=tok, data_collator=adapter.collator(tok),
    )  # fmt: skip


def _texts_batch(tok, padding_side: str = "right") -> dict[str, torch.Tensor]:
    tok.padding_side = padding_side
    return dict(tok(["she cares for patients , said mary", "he operates", "john reads books at the lab"],
                    padding=True, return_tensors="pt"))  # fmt: skip


# ---- wrapping -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,head,targets", [("llama", "score", {"q_proj", "v_proj"}), ("gpt2", "score", {"c_attn"})]
)
def test_wrap_with_lora_defaults(kind, head, targets, tmp_path):
    path = make_tiny_decoder(tmp_path / kind, kind)
    model_args = _model_args(path)
    adapter = ClassificationAdapter()
    model = load_model(model_args, adapter, load_tokenizer(model_args), ["a", "b"])
    config = model.peft_config["default"]
    assert str(config.task_type).endswith("SEQ_CLS")
    assert set(config.target_modules) == targets and head in config.modules_to_save
    assert config.fan_in_fan_out == (kind == "gpt2")  # GPT-2's Conv1D stores weights transposed
    trainable = trainable_parameter_names(model)
    assert trainable and all("lora_" in n or f"{head}.modules_to_save" in n for n in trainable)


def test_wrap_with_lora_bert_targets_query_value(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    peft_model = wrap_with_lora(model, _model_args(tiny_bert_dir), ClassificationAdapter())
    config = peft_model.peft_config["default"]
    assert set(config.target_modules) == {"query", "value"} and "classifier" in config.modules_to_save


def test_explicit_targets_and_errors(llama_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(llama_dir, num_labels=2)
    config = lora_config(model, _model_args(llama_dir, lora_target_modules="q_proj,k_proj,o_proj"), "classification")
    assert set(config.target_modules) == {"q_proj", "k_proj", "o_proj"}
    with pytest.raises(ValueError, match="`task`"):
        lora_config(model, _model_args(llama_dir), "summarisation")
    with pytest.raises(ValueError, match="task head"):
        lora_config(model.model, _model_args(llama_dir), "classification")  # the bare body has no head


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_4bit_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="`load_in_4bit`.*GPU"):
        check_4bit_support()


# ---- training with the adversary ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_lora_training_saving_and_reloading(kind, llama_dir, gpt2_dir, tmp_path):
    """Base weights frozen, LoRA and head trained, adversary trained; the adapter saved without the adversary and
    reloaded on a fresh base model gives the same predictions."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    model_dir = llama_dir if kind == "llama" else gpt2_dir
    trainer = _lora_trainer(model_dir, tmp_path / "out")
    model = trainer.model
    tok = trainer.processing_class
    assert tok.pad_token is not None and model.config.pad_token_id == tok.pad_token_id  # pad = eos for GPT-2
    assert model.adversary is trainer.adversary and all(p.requires_grad for p in trainer.adversary.parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    base = {n for n, p in after.items() if not p.requires_grad}
    assert base and not (changed & base)  # base weights unchanged
    assert any("lora_B" in n for n in changed)  # adapters trained (B starts at zero)
    assert any(".modules_to_save." in n and "score" in n for n in changed)  # the head trained in full
    assert any(n.startswith("adversary.") for n in changed)  # the adversary trained
    logs = [h for h in trainer.state.log_history if "adversary_loss" in h]
    assert logs and "dp_gap" in logs[0]

    out = tmp_path / "out"
    trainer.save_model()
    adapter_weights = load_file(str(out / "adapter_model.safetensors"))
    assert any("lora_A" in k for k in adapter_weights) and any("score" in k for k in adapter_weights)
    assert not any("adversary" in k for k in adapter_weights)
    assert not (out / "model.safetensors").exists()  # the adapter, not a full copy of the base model

    batch = _texts_batch(tok)
    model.eval()
    with torch.no_grad():
        expected = model(**batch).task_outputs.logits
    base_model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    base_model.config.pad_token_id = tok.pad_token_id
    reloaded = PeftModel.from_pretrained(base_model, out).eval()
    with torch.no_grad():
        got = reloaded(**batch).logits
    assert torch.allclose(expected, got, atol=1e-5)


# ---- pooling --------------------------------------------------------------------------------------------------
def test_decoder_pools_last_non_pad_token_left_and_right(llama_dir, tmp_path):
    """The adversary reads the last real token whichever side the tokenizer pads; Llama's output (RoPE: relative
    positions) is the same for a text padded on either side, and so is the pooled vector."""
    trainer = _lora_trainer(llama_dir, tmp_path / "out")
    model, tok = trainer.model.eval(), trainer.processing_class
    pooled, logits = {}, {}
    for side in ("right", "left"):
        batch = _texts_batch(tok, side)
        with torch.no_grad():
            out = model(**batch, output_hidden_states=True)
        mask = batch["attention_mask"]
        padded_left, padded_right = bool((mask[:, 0] == 0).any()), bool((mask[:, -1] == 0).any())
        assert (padded_left, padded_right) == (side == "left", side == "right")
        last = (mask * torch.arange(mask.shape[1])).argmax(1)
        expected = out.task_outputs.hidden_states[-1][torch.arange(mask.shape[0]), last]
        assert torch.allclose(out.pooled, expected, atol=1e-6)
        pooled[side], logits[side] = out.pooled, out.task_outputs.logits
    assert torch.allclose(pooled["left"], pooled["right"], atol=1e-4)
    assert torch.allclose(logits["left"], logits["right"], atol=1e-4)


# ---- recipes --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "recipe", sorted((REPO / "recipes" / "classification").glob("*lora*.yaml")), ids=lambda p: p.name
)
def test_lora_recipes_parse(recipe):
    from fairtune.parser import parse_config

    model_args, data_args, training_args = parse_config(recipe, ["--output_dir", "/tmp/fairtune-recipe-check"])
    assert model_args.use_peft and model_args.lora_r > 0 and model_args.lora_target_modules
    assert training_args.adversary_weight > 0 and data_args.group_column


def test_logits_adversary_with_lora_trains_and_resumes_its_state(llama_dir, tmp_path):
    """The recipes' adversary (predicted log-probabilities, label-conditioned, balanced, extra steps) on a LoRA
    decoder: its heads read the `score` head's classes, it trains, and the checkpoint holds its own optimizer."""
    trainer = _lora_trainer(
        llama_dir,
        tmp_path / "out",
        adversary_input="logits",
        adversary_label_conditioned=True,
        adversary_balance=True,
        adversary_steps=3,
        save_strategy="steps",
        save_steps=3,
    )
    assert trainer.adversary.heads[0][0].in_features == 2
    before = {k: v.clone() for k, v in trainer.adversary.state_dict().items()}
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in trainer.adversary.state_dict().items())
    ckpt = tmp_path / "out" / "checkpoint-3"
    assert (ckpt / "fairtune_adversary.safetensors").is_file()
    assert (ckpt / "fairtune_adversary_optimizer.pt").is_file()
