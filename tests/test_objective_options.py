"""Recipe options that give the objectives model-remediation's conventions: MinDiff's MMDLoss, CLP's pair losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import biased_rows
from helpers import build_trainer

from fairtune.objectives import FairBatch, get_objective
from fairtune.objectives.mmd import weighted_mmd


def _batch(n=40, classes=2, seed=0, num_groups=3):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=gen, requires_grad=True)
    groups = torch.randint(0, num_groups, (n,), generator=gen)
    groups[:3] = -1  # rows without a group take no part
    labels = torch.randint(0, classes, (n,), generator=gen)
    batch = FairBatch(
        losses=torch.zeros(n), groups=groups, num_groups=num_groups, labels=labels, probs=logits.softmax(-1)
    )
    return batch, logits


def _np_mmd(x, m, kind, length):
    """model-remediation's MMDLoss by hand (unweighted): Euclidean distances, exp(-d^2/l^2) / exp(-d/l)."""
    d = np.linalg.norm(x[:, None, :] - x[None, :, :] + (1e-8 if kind == "laplacian" else 0.0), axis=-1)
    k = np.exp(-(d**2) / length**2) if kind == "gaussian" else np.exp(-d / length)
    p, q = m == 1, m == 0
    return k[np.ix_(p, p)].mean() - 2 * k[np.ix_(p, q)].mean() + k[np.ix_(q, q)].mean()


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian"])
@pytest.mark.parametrize("classes", [2, 3])
def test_mindiff_model_remediation_equals_mmdloss_by_hand(kernel, classes):
    batch, _ = _batch(classes=classes)
    objective = get_objective("mindiff")(
        num_groups=3, mindiff_kernel=kernel, mindiff_bandwidth=0.3, mindiff_convention="model_remediation"
    )
    value, logs = objective(batch)
    probs = batch.probs.detach().numpy()
    x = probs[:, 1:2] if classes == 2 else probs
    g = batch.groups.numpy()
    expected = np.mean([_np_mmd(x[g >= 0], (g[g >= 0] == k).astype(int), kernel, 0.3) for k in range(3)])
    assert float(value) == pytest.approx(expected, rel=1e-5)
    assert logs["mindiff_mmd"] == pytest.approx(expected, rel=1e-5)
    value.backward()  # differentiable end to end


def test_mindiff_conventions_agree_where_the_mapping_says():
    """Gaussian: fairtune's sigma equals model-remediation's l / sqrt 2; Laplacian: equal on binary scores only."""
    binary, _ = _batch(classes=2)
    mindiff = get_objective("mindiff")
    ours = mindiff(num_groups=3, mindiff_bandwidth=0.2)(binary)[0]
    theirs = mindiff(num_groups=3, mindiff_bandwidth=0.2 * math.sqrt(2), mindiff_convention="model_remediation")(
        binary
    )[0]
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)
    lap = {"mindiff_kernel": "laplacian", "mindiff_bandwidth": 0.2}
    same = [mindiff(num_groups=3, **lap, mindiff_convention=c)(binary)[0] for c in ("fairtune", "model_remediation")]
    assert float(same[0]) == pytest.approx(float(same[1]), rel=1e-4)
    multi, _ = _batch(classes=3)
    differ = [mindiff(num_groups=3, **lap, mindiff_convention=c)(multi)[0] for c in ("fairtune", "model_remediation")]
    assert abs(float(differ[0]) - float(differ[1])) > 1e-4  # L1 vs Euclidean distance on 3-dim scores


def test_mindiff_model_remediation_label_restriction_and_two_groups():
    batch, _ = _batch(num_groups=2)
    objective = get_objective("mindiff")(num_groups=2, mindiff_label=0, mindiff_convention="model_remediation")
    value, _ = objective(batch)
    keep = (batch.groups >= 0) & (batch.labels == 0)
    expected = weighted_mmd(batch.probs[keep][:, 1:2], (batch.groups[keep] == 0).long(), kernel_length=0.1)
    assert float(value) == pytest.approx(float(expected), rel=1e-6)


def _pairs(num_pairs=5, classes=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(num_pairs, classes, generator=gen), torch.randn(num_pairs, classes, generator=gen)
    return a, b


@pytest.mark.parametrize(
    "kind, per_pair",
    [
        ("l2", lambda a, b: ((a - b) ** 2).mean(-1)),
        ("l1", lambda a, b: np.abs(a - b).mean(-1)),
        (
            "cosine",
            lambda a, b: -(a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)),
        ),
    ],
)
def test_clp_pair_losses_read_the_logits(kind, per_pair):
    a, b = _pairs()
    batch = FairBatch(losses=torch.zeros(10), groups=torch.zeros(10, dtype=torch.long), num_groups=1)
    batch.pair_logits, batch.num_pairs = (a, b, None), 5
    batch.pair_log_probs = (a.log_softmax(-1), b.log_softmax(-1), None)  # must not be read
    clp = get_objective("clp")(clp_loss=kind)
    value, logs = clp(batch)
    expected = per_pair(a.numpy(), b.numpy())
    assert float(value) == pytest.approx(float(expected.sum()), rel=1e-5)  # scale 1: the sum over pairs
    assert float(logs["clp"].num) / logs["clp"].den == pytest.approx(float(expected.mean()), rel=1e-5)
    assert type(clp).needs_for({"clp_loss": kind}) == ("pair_logits",)
    assert type(clp).needs_for({"clp_loss": "kl"}) == ("pair_log_probs",)


def test_clp_unknown_pair_loss_is_refused():
    with pytest.raises(ValueError, match="`clp_loss`: unknown pair loss 'mse'"):
        get_objective("clp")(clp_loss="mse")


def test_trainer_feeds_raw_logits_to_the_l2_pair_loss(tiny_bert_dir, tmp_path):
    """End to end on a tiny BERT: the logged CLP is the mean over pairs of model-remediation's MSE of the logits."""
    from fairtune.augment import CounterfactualAugmenter
    from fairtune.objectives.counterfactual import find_pairs

    rows = CounterfactualAugmenter(axes=("gender",)).augment_rows(
        biased_rows(16, 0.9, seed=9), task="classification", mode="two_sided", text_columns=["text"]
    )
    trainer = build_trainer(tiny_bert_dir, rows, rows, tmp_path, clp_weight=1.0, clp_loss="l2")
    trainer.args.per_device_eval_batch_size = len(rows)  # one batch: every pair inside it
    with torch.no_grad():  # a random tiny model barely tells a pair apart: amplify its logits
        trainer.task_model.classifier.weight.mul_(1e4)
    metrics = trainer.evaluate()
    out = trainer.predict(trainer.eval_dataset)
    logits = torch.as_tensor(out.predictions["logits"])
    ds = trainer.eval_dataset
    pairs = find_pairs(torch.as_tensor(ds["pair_id"]), torch.as_tensor(ds["is_cf"]))
    assert len(pairs) == 16
    expected = ((logits[pairs[:, 0]] - logits[pairs[:, 1]]) ** 2).mean(-1).mean()
    assert float(expected) > 1e-3
    assert metrics["eval_clp"] == pytest.approx(float(expected), rel=1e-4)
    logp = logits.log_softmax(-1)
    on_log_probs = ((logp[pairs[:, 0]] - logp[pairs[:, 1]]) ** 2).mean(-1).mean()
    assert abs(float(on_log_probs) - float(expected)) > 1e-3 * float(
        expected
    )  # it is the logits, not the log-probabilities


def test_qa_refuses_logit_pair_losses_at_start_up(tmp_path):
    from test_task_qa import make_word_bert
    from transformers import AutoModelForQuestionAnswering

    from fairtune.config import FairTrainingArguments
    from fairtune.tasks.qa import QaAdapter
    from fairtune.trainer import FairTrainer

    model = AutoModelForQuestionAnswering.from_pretrained(make_word_bert(tmp_path / "m", "qa"))
    args = FairTrainingArguments(
        output_dir=str(tmp_path / "o"), clp_weight=1.0, clp_loss="cosine", use_cpu=True, report_to="none"
    )
    with pytest.raises(ValueError, match=r"`clp_weight` with clp_loss: cosine: the qa task cannot feed"):
        FairTrainer(model=model, args=args, task_adapter=QaAdapter(), group_names=["f", "m"])


@pytest.mark.parametrize(
    "field, value", [("clp_loss", "mse"), ("mindiff_convention", "tensorflow")], ids=["clp", "mindiff"]
)
def test_bad_option_values_name_the_field(field, value, tmp_path):
    from fairtune.config import FairTrainingArguments

    with pytest.raises(ValueError, match=f"`?{field}`?"):
        FairTrainingArguments(output_dir=str(tmp_path), **{field: value})


def test_card_lists_the_non_default_conventions():
    clp, mindiff = get_objective("clp"), get_objective("mindiff")
    assert clp.card_settings({"clp_loss": "kl"}) == {}
    assert clp.card_settings({"clp_loss": "cosine"}) == {"clp_loss": "cosine"}
    base = {"mindiff_kernel": "gaussian", "mindiff_bandwidth": 0.1}
    assert "mindiff_convention" not in mindiff.card_settings({**base, "mindiff_convention": "fairtune"})
    assert mindiff.card_settings({**base, "mindiff_convention": "model_remediation"})["mindiff_convention"] == (
        "model_remediation"
    )
