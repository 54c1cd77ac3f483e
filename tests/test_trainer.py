"""FairTrainer behaviour: data flow of groups, accumulation, checkpoints, the adversary's wiring, pooling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import biased_rows
from helpers import build_trainer
from safetensors.torch import load_file


def test_group_reaches_compute_loss_and_metrics(tiny_bert_dir, tmp_path):
    trainer = build_trainer(tiny_bert_dir, biased_rows(32, 0.9), biased_rows(24, 0.5, seed=3), tmp_path, dp_weight=1.0)
    seen = {}
    original = trainer.compute_loss

    def spy(model, inputs, *a, **k):
        seen.setdefault("group", inputs.get("group"))
        return original(model, inputs, *a, **k)

    trainer.compute_loss = spy
    metrics = trainer.evaluate()
    assert seen["group"] is not None and set(seen["group"].tolist()) <= {0, 1}
    assert "eval_demographic_parity_difference" in metrics
    assert "eval_group_female_tpr" in metrics and "eval_group_male_tpr" in metrics
    assert "eval_dp_gap" in metrics  # objective values are logged in evaluation too


def test_unlabelled_predict_still_works(tiny_bert_dir, tmp_path):
    trainer = build_trainer(tiny_bert_dir, biased_rows(16, 0.9), None, tmp_path, adversary_weight=1.0)
    unlabelled = trainer.train_dataset.remove_columns(["labels"])
    out = trainer.predict(unlabelled)
    logits = out.predictions["logits"]  # predictions are keyed by name
    assert logits.shape == (16, 2)
    assert out.label_ids is None


def test_eval_outputs_hold_pooled_vector_not_hidden_states(tiny_bert_dir, tmp_path):
    trainer = build_trainer(tiny_bert_dir, biased_rows(16, 0.9), biased_rows(16, 0.5), tmp_path)
    out = trainer.predict(trainer.eval_dataset)
    assert set(out.predictions) == {"logits", "pooled"}  # keyed by name: no hidden states
    assert out.predictions["pooled"].shape == (16, 32)  # [rows, hidden]: one pooled vector per row


def _final_params(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def test_gradient_accumulation_equals_one_big_batch(tiny_bert_dir, tmp_path):
    rows = biased_rows(16, 0.9, seed=5)
    common = dict(
        optim="sgd",
        learning_rate=0.5,
        max_steps=1,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        adversary_weight=1.0,
        clp_weight=0.0,
        max_grad_norm=0.0,
    )
    big = build_trainer(
        tiny_bert_dir,
        rows,
        None,
        tmp_path / "a",
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        **common,
    )
    big.train()
    small = build_trainer(
        tiny_bert_dir,
        rows,
        None,
        tmp_path / "b",
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        **common,
    )
    small.train()
    pa, pb = _final_params(big), _final_params(small)
    assert pa.keys() == pb.keys()
    moved = 0
    for name in pa:
        assert torch.allclose(pa[name], pb[name], atol=1e-6), name
    init = build_trainer(tiny_bert_dir, rows, None, tmp_path / "c", **common)
    for name, p in _final_params(init).items():
        moved += int(not torch.allclose(p, pa[name]))
    assert moved > 0


def test_resume_gives_same_losses_and_adversary(tiny_bert_dir, tmp_path):
    rows = biased_rows(48, 0.9, seed=7)
    common = dict(
        max_steps=6,
        per_device_train_batch_size=8,
        adversary_weight=1.0,
        group_dro_weight=1.0,
        save_strategy="steps",
        save_steps=3,
        logging_steps=1,
    )
    full = build_trainer(tiny_bert_dir, rows, None, tmp_path / "full", **common)
    full.train()
    losses_full = [h["loss"] for h in full.state.log_history if "loss" in h]

    part = build_trainer(tiny_bert_dir, rows, None, tmp_path / "part", **common)
    part.train()
    ckpt = tmp_path / "part" / "checkpoint-3"
    assert (ckpt / "fairtune_adversary.safetensors").is_file()
    state = json.loads((ckpt / "fairtune_state.json").read_text())
    assert state["group_dro"]["q"] and len(state["group_dro"]["q"]) == 2

    resumed = build_trainer(tiny_bert_dir, rows, None, tmp_path / "part", **common)
    resumed.train(resume_from_checkpoint=str(ckpt))
    losses_resumed = [h["loss"] for h in resumed.state.log_history if "loss" in h]
    assert losses_resumed[-3:] == pytest.approx(losses_full[-3:], rel=1e-5)
    for (n, a), (_, b) in zip(full.adversary.state_dict().items(), resumed.adversary.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), n
    assert resumed.group_dro.q.tolist() == pytest.approx(full.group_dro.q.tolist(), rel=1e-6)


def test_adversary_optimizer_device_and_saving(tiny_bert_dir, tmp_path):
    trainer = build_trainer(
        tiny_bert_dir,
        biased_rows(32, 0.9),
        None,
        tmp_path,
        adversary_weight=1.0,
        adversary_lr=0.005,
        max_steps=2,
        save_strategy="steps",
        save_steps=2,
    )
    adv = trainer.adversary
    before = {k: v.clone() for k, v in adv.state_dict().items()}
    trainer.train()
    # in the optimizer, with its own learning rate
    groups = [g for g in trainer.optimizer.param_groups if g.get("fairtune_adversary")]
    assert len(groups) == 1 and groups[0]["initial_lr"] == pytest.approx(0.005)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in adv.parameters()}
    # on the model's device and trained
    dev = next(trainer.model.parameters()).device
    assert all(p.device == dev for p in adv.parameters())
    assert any(not torch.allclose(before[k], v) for k, v in adv.state_dict().items())
    # the final model is a plain transformers model; the checkpoint keeps the adversary in its own file
    trainer.save_model()
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert not any("adversary" in k for k in weights)
    assert trainer.model.adversary is adv  # the FairModel keeps it for further training
    ckpt = load_file(str(tmp_path / "checkpoint-2" / "fairtune_adversary.safetensors"))
    assert set(ckpt) == set(adv.state_dict())
    ckpt_weights = load_file(str(tmp_path / "checkpoint-2" / "model.safetensors"))
    assert not any("adversary" in k for k in ckpt_weights)
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(tmp_path)  # loads cleanly


def test_adversary_lowers_group_information(tiny_bert_dir, tmp_path):
    """Logged adversary accuracy and loss appear in train logs."""
    trainer = build_trainer(tiny_bert_dir, biased_rows(32, 0.9), None, tmp_path, adversary_weight=1.0, max_steps=2)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "adversary_loss" in h]
    assert logs and 0.0 <= logs[0]["adversary_accuracy"] <= 1.0


def test_decoder_pools_last_non_pad_token(tiny_llama_dir, tmp_path):
    trainer = build_trainer(tiny_llama_dir, biased_rows(16, 0.9), None, tmp_path, adversary_weight=1.0, max_steps=1)
    trainer.train()
    model = trainer.model.eval()
    tok = trainer.processing_class
    enc = tok(["she is good", "he is good at the hospital"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    last = enc["attention_mask"].sum(1) - 1
    expected = out.task_outputs.hidden_states[-1][torch.arange(2), last]
    assert torch.allclose(out.pooled, expected, atol=1e-5)


def test_resample_balances_group_label_cells(tiny_bert_dir, tmp_path):
    rows = biased_rows(200, 0.9, seed=11)
    trainer = build_trainer(tiny_bert_dir, rows, None, tmp_path, group_balance="resample")
    sampler = trainer._get_train_sampler()
    idx = list(iter(sampler))
    ds = trainer.train_dataset
    cells = {}
    for i in idx:
        key = (ds[i]["group"], ds[i]["labels"])
        cells[key] = cells.get(key, 0) + 1
    counts = np.array(list(cells.values()))
    assert len(counts) == 4 and counts.min() / counts.max() > 0.6  # raw data is 9:1 within each label


def test_reweight_adds_balancing_weights(tiny_bert_dir, tmp_path):
    trainer = build_trainer(tiny_bert_dir, biased_rows(100, 0.9, seed=3), None, tmp_path, group_balance="reweight")
    ds = trainer.train_dataset
    w = np.array(ds["sample_weight"])
    cells = list(zip(ds["group"], ds["labels"]))
    totals = {c: w[[i for i, x in enumerate(cells) if x == c]].sum() for c in set(cells)}
    assert max(totals.values()) == pytest.approx(min(totals.values()))


def test_warns_when_a_micro_batch_holds_few_rows_of_a_group(tiny_bert_dir, tmp_path, caplog):
    import logging

    rows = [dict(r, gender="female") for r in biased_rows(15, 0.9)] + [dict(biased_rows(1, 0.9)[0], gender="male")]
    trainer = build_trainer(
        tiny_bert_dir, rows, None, tmp_path, dp_weight=1.0, max_steps=2, per_device_train_batch_size=8
    )
    with caplog.at_level(logging.WARNING, logger="fairtune.trainer"):
        trainer.train()
    assert "fewer than 2 rows of some group" in caplog.text
    assert trainer._few_group_batches >= 1
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert all(np.isfinite(losses))  # a batch with one group adds 0, never NaN


def test_clp_with_accumulation_equals_one_big_batch_and_keeps_pairs(tiny_bert_dir, tmp_path):
    from fairtune.augment import CounterfactualAugmenter

    rows = CounterfactualAugmenter(axes=("gender",)).augment_rows(
        biased_rows(16, 0.9, seed=9), task="classification", mode="two_sided", text_columns=["text"]
    )
    assert len(rows) == 32  # every row has a pronoun: 16 pairs
    common = dict(
        optim="sgd",
        learning_rate=0.5,
        max_steps=1,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        clp_weight=1.0,
        max_grad_norm=0.0,
    )
    big = build_trainer(tiny_bert_dir, rows, None, tmp_path / "a", per_device_train_batch_size=16, **common)
    batch = next(iter(big.get_train_dataloader()))
    pairs = batch["pair_id"][batch["is_cf"] == 1].tolist()
    originals = batch["pair_id"][batch["is_cf"] == 0].tolist()
    assert sorted(pairs) == sorted(originals) and len(pairs) == 8  # every pair whole in its batch
    big.train()
    small = build_trainer(
        tiny_bert_dir,
        rows,
        None,
        tmp_path / "b",
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        **common,
    )
    small.train()
    assert [h["clp_pairs"] for h in big.state.log_history if "clp_pairs" in h][0] == 8
    pa, pb = _final_params(big), _final_params(small)
    for name in pa:
        assert torch.allclose(pa[name], pb[name], atol=1e-6), name


def test_resume_with_paired_batches_replays_the_same_batches(tiny_bert_dir, tmp_path):
    from fairtune.augment import CounterfactualAugmenter

    rows = CounterfactualAugmenter(axes=("gender",)).augment_rows(
        biased_rows(24, 0.9, seed=4), task="classification", mode="two_sided", text_columns=["text"]
    )
    common = dict(
        max_steps=6,
        per_device_train_batch_size=8,
        clp_weight=1.0,
        adversary_weight=0.5,
        save_strategy="steps",
        save_steps=3,
        logging_steps=1,
        num_train_epochs=3,
    )
    full = build_trainer(tiny_bert_dir, rows, None, tmp_path / "full", **common)
    full.train()
    part = build_trainer(tiny_bert_dir, rows, None, tmp_path / "part", **common)
    part.train()
    resumed = build_trainer(tiny_bert_dir, rows, None, tmp_path / "part", **common)
    resumed.train(resume_from_checkpoint=str(tmp_path / "part" / "checkpoint-3"))

    def history(t, key):
        return [h[key] for h in t.state.log_history if "loss" in h]

    assert history(resumed, "loss")[-3:] == pytest.approx(history(full, "loss")[-3:], rel=1e-5)
    assert history(resumed, "clp_pairs")[-3:] == history(full, "clp_pairs")[-3:]


def test_extra_adversary_steps_strengthen_the_adversary_and_resume(tiny_bert_dir, tmp_path):
    rows = biased_rows(32, 0.9, seed=12)
    common = dict(
        max_steps=2,
        per_device_train_batch_size=16,
        adversary_weight=0.5,
        logging_steps=1,
        save_strategy="steps",
        save_steps=1,
    )
    one = build_trainer(tiny_bert_dir, rows, None, tmp_path / "one", adversary_steps=1, **common)
    one.train()
    five = build_trainer(tiny_bert_dir, rows, None, tmp_path / "five", adversary_steps=5, adversary_lr=0.01, **common)
    five.train()
    first = [h["adversary_loss"] for h in one.state.log_history if "adversary_loss" in h][0]
    first5 = [h["adversary_loss"] for h in five.state.log_history if "adversary_loss" in h][0]
    assert first5 < first  # four extra updates on the batch before the joint step
    ckpt = tmp_path / "five" / "checkpoint-1"
    assert (ckpt / "fairtune_adversary_optimizer.pt").is_file()
    resumed = build_trainer(
        tiny_bert_dir, rows, None, tmp_path / "five", adversary_steps=5, adversary_lr=0.01, **common
    )
    resumed.train(resume_from_checkpoint=str(ckpt))
    a = [h["loss"] for h in five.state.log_history if "loss" in h]
    b = [h["loss"] for h in resumed.state.log_history if "loss" in h]
    assert b[-1] == pytest.approx(a[-1], rel=1e-5)
    with pytest.raises(ValueError, match="`adversary_steps`"):
        build_trainer(tiny_bert_dir, rows, None, tmp_path / "bad", adversary_steps=0, adversary_weight=0.5)


def test_logits_adversary_reads_the_predicted_log_probabilities(tiny_bert_dir, tmp_path):
    """`adversary_input: logits` (Zhang et al. 2018): the adversary sees log-softmax of the logits, label-conditioned
    heads per class, and its reversed gradient reaches the classifier head and the encoder."""
    trainer = build_trainer(
        tiny_bert_dir,
        biased_rows(16, 0.9),
        None,
        tmp_path,
        adversary_weight=1.0,
        adversary_input="logits",
        adversary_label_conditioned=True,
    )
    adv = trainer.adversary
    assert adv.heads[0][0].in_features == 2  # two classes, not the hidden size
    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model.train()
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    torch.manual_seed(0)
    out = model(**inputs)
    expected = adv(out.task_outputs.logits.float().log_softmax(-1))
    assert torch.allclose(out.adversary_logits, expected, atol=1e-6)
    assert out.adversary_logits.shape == (1, 1, 8, 2, 2)  # [M, K, B, label slots, groups]
    model.zero_grad()
    out.adversary_logits.sum().backward()
    head = model.task_model.classifier
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    # the leakage probe still reads the pooled representation
    assert out.pooled.shape == (8, 32)
    with pytest.raises(ValueError, match="adversary_input"):
        build_trainer(tiny_bert_dir, biased_rows(8, 0.9), None, tmp_path, adversary_weight=1.0, adversary_input="x")


def test_adversary_balance_weights_rows_by_training_cells(tiny_bert_dir, tmp_path, caplog):
    rows = biased_rows(40, 0.9, seed=2)
    trainer = build_trainer(
        tiny_bert_dir,
        rows,
        None,
        tmp_path,
        adversary_weight=1.0,
        adversary_label_conditioned=True,
        adversary_balance=True,
        max_steps=1,
    )
    ds = trainer.train_dataset
    g, y = torch.tensor(list(ds["group"])), torch.tensor(list(ds["labels"]))
    w = trainer._adversary_row_weights(g, y)
    cells = {(a, b) for a, b in zip(y.tolist(), g.tolist())}
    for a, b in cells:  # every (label, group) cell carries the same total weight
        cell = (y == a) & (g == b)
        assert w[cell].sum().item() == pytest.approx(len(ds) / len(cells), rel=1e-5)
    # training passes the weights to the adversary's loss
    seen = {}
    import fairtune.objectives.adversarial as T  # the adversary objective computes its loss there

    original = T.adversary_loss

    def spy(logits, groups, labels=None, row_weights=None):
        seen["weights"] = row_weights
        return original(logits, groups, labels, row_weights)

    T.adversary_loss = spy
    try:
        trainer.train()
    finally:
        T.adversary_loss = original
    assert seen["weights"] is not None and not torch.allclose(seen["weights"], torch.ones_like(seen["weights"]))
    # unconditioned: groups only, one label slot
    plain = build_trainer(tiny_bert_dir, rows, None, tmp_path, adversary_weight=1.0, adversary_balance=True)
    wg = plain._adversary_row_weights(g, None)
    for b in (0, 1):
        assert wg[g == b].sum().item() == pytest.approx(len(ds) / 2, rel=1e-5)
    off = build_trainer(tiny_bert_dir, rows, None, tmp_path, adversary_weight=1.0)
    assert off._adversary_row_weights(g, y) is None
    # evaluation-only use without a training set: unweighted, with a warning (not a crash mid-evaluation)
    plain._adversary_cells, plain.train_dataset = None, None
    with caplog.at_level("WARNING", logger="fairtune.trainer"):
        assert plain._adversary_row_weights(g, None) is None
    assert "adversary_balance" in caplog.text


def test_gap_groups_is_refused_for_classification_and_parsed_as_a_list(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="`gap_groups` is for NER/QA"):
        build_trainer(tiny_bert_dir, biased_rows(8, 0.9), None, tmp_path, gap_groups=["female", "male"])
    from fairtune.parser import parse_config

    _, _, args = parse_config(None, {"task": "ner", "gap_groups": "female,male", "output_dir": str(tmp_path)})
    assert args.gap_groups == ["female", "male"]
