"""FairnessCallback: tracks fairness metrics per evaluation, stops after N consecutive violations."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from fairtune.callbacks import FairnessCallback
from fairtune.metrics.group import group_fairness_metrics


def _evaluate(cb, state, control, step, **metrics):
    state.global_step = step
    return cb.on_evaluate(None, state, control, metrics={f"eval_{k}": v for k, v in metrics.items()})


def test_stops_only_after_patience_consecutive_violations():
    cb = FairnessCallback("equalized_odds_difference<=0.1", patience=2)
    state, control = TrainerState(), TrainerControl()
    for step, eo in ((1, 0.05), (2, 0.2), (3, 0.08), (4, 0.15)):
        _evaluate(cb, state, control, step, equalized_odds_difference=eo, accuracy=0.9)
        assert not control.should_training_stop, step  # a violation followed by a pass resets the count
    _evaluate(cb, state, control, 5, equalized_odds_difference=0.3, accuracy=0.9)
    assert control.should_training_stop and cb.stopped_at == 5
    assert [h["equalized_odds_difference"] for h in cb.history] == [0.05, 0.2, 0.08, 0.15, 0.3]
    assert [bool(h["violated"]) for h in cb.history] == [False, True, False, True, True]
    assert cb.history[0]["accuracy"] == 0.9 and cb.history[-1]["step"] == 5


def test_several_constraints_and_a_missing_metric(caplog):
    cb = FairnessCallback(["accuracy>=0.8", "tpr_gap_rms<=0.05"], patience=1)
    state, control = TrainerState(), TrainerControl()
    with caplog.at_level(logging.WARNING, logger="fairtune.callbacks"):
        _evaluate(cb, state, control, 1, accuracy=0.9)
    assert "tpr_gap_rms" in caplog.text and not control.should_training_stop
    _evaluate(cb, state, control, 2, accuracy=0.7, tpr_gap_rms=0.01)
    assert control.should_training_stop and cb.history[-1]["violated"] == ["accuracy>=0.8"]


def test_state_survives_a_checkpoint():
    cb = FairnessCallback("demographic_parity_difference<=0.1", patience=3)
    state, control = TrainerState(), TrainerControl()
    _evaluate(cb, state, control, 1, demographic_parity_difference=0.4)
    _evaluate(cb, state, control, 2, demographic_parity_difference=0.4)
    restored = FairnessCallback.from_state(cb.state())
    _evaluate(restored, state, control, 3, demographic_parity_difference=0.4)
    assert control.should_training_stop and restored.stopped_at == 3


def test_bad_constraint_fails_before_training():
    with pytest.raises(ValueError, match="cannot read the constraint"):
        FairnessCallback("equalized odds under 0.1")
    with pytest.raises(ValueError, match="patience"):
        FairnessCallback("accuracy>=0.5", patience=0)


def _trainer(model_dir, out, callback):
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = [
        {"text": f"{'she' if i % 2 else 'he'} reads books at the hospital", "label": i % 3 == 0} for i in range(32)
    ]
    groups = ["female" if i % 2 else "male" for i in range(32)]
    ds = Dataset.from_list([{"text": r["text"], "label": int(r["label"])} for r in rows])
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=16, padding="max_length"), batched=True)

    def compute_metrics(pred):
        r = group_fairness_metrics(pred.label_ids, np.argmax(pred.predictions, -1), groups, labels=[0, 1])
        return {k: r[k] for k in ("accuracy", "demographic_parity_difference", "equalized_odds_difference")}

    args = TrainingArguments(
        output_dir=str(out),
        max_steps=6,
        eval_strategy="steps",
        eval_steps=1,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=32,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    return Trainer(
        model=model,
        args=args,
        train_dataset=ds,
        eval_dataset=ds,
        compute_metrics=compute_metrics,
        callbacks=[callback],
    )


def test_a_real_training_run_stops_on_a_violated_constraint(tiny_bert_dir, tmp_path):
    cb = FairnessCallback("demographic_parity_difference<-1", patience=2)  # a gap is never negative
    trainer = _trainer(tiny_bert_dir, tmp_path / "a", cb)
    trainer.train()
    assert trainer.state.global_step == 2 and cb.stopped_at == 2
    assert len(cb.history) == 2 and all(0 <= h["demographic_parity_difference"] <= 1 for h in cb.history)
    logged = [
        e["eval_demographic_parity_difference"]
        for e in trainer.state.log_history
        if "eval_demographic_parity_difference" in e
    ]
    assert logged == [h["demographic_parity_difference"] for h in cb.history]


def test_a_real_training_run_continues_while_the_constraint_holds(tiny_bert_dir, tmp_path):
    cb = FairnessCallback("demographic_parity_difference<=1", patience=1)
    trainer = _trainer(tiny_bert_dir, tmp_path / "b", cb)
    trainer.train()
    assert trainer.state.global_step == 6 and cb.stopped_at is None and len(cb.history) == 6
