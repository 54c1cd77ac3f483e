"""LEACE erasure folded into the head: exact fold on every supported head, plain reload, the probe at the
majority baseline on a controlled-bias set, NER/QA shapes, streamed statistics that merge across processes."""

import numpy as np
import pytest
import torch
import transformers as tf

from fairtune.objectives.adversarial import leakage_probe
from fairtune.posthoc.erasure import (
    apply_eraser,
    collect_head_inputs,
    combine_groups,
    erase_head_input,
    find_head_layer,
    fit_eraser,
    fold_eraser,
    merge_leace_fitters,
    quadratic_erase,
)
from fairtune.posthoc.step import erase_model, erasure_report

SMALL = dict(
    vocab_size=60,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    initializer_range=0.3,
)


def _bert(cls=tf.BertForSequenceClassification, **kw):
    torch.manual_seed(0)
    return cls(tf.BertConfig(**SMALL, max_position_embeddings=32, num_labels=kw.pop("num_labels", 2), **kw)).eval()


def _models():
    torch.manual_seed(0)
    return {
        "bert": _bert(),
        "roberta": tf.RobertaForSequenceClassification(
            tf.RobertaConfig(**SMALL, max_position_embeddings=40, num_labels=3)
        ).eval(),
        "distilbert": tf.DistilBertForSequenceClassification(
            tf.DistilBertConfig(vocab_size=60, dim=16, n_layers=1, n_heads=2, hidden_dim=32, num_labels=2)
        ).eval(),
        "gpt2": tf.GPT2ForSequenceClassification(
            tf.GPT2Config(vocab_size=60, n_embd=16, n_layer=1, n_head=2, n_positions=32, num_labels=2, pad_token_id=0)
        ).eval(),
    }


def _batches(n=96, length=10, groups=3, seed=0, labels=None, planted=False, batch_size=32):
    """Random token batches; `planted`: the group's own token appears in every sentence (a controlled bias)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 60, (n, length), generator=g)
    grp = torch.randint(0, groups, (n,), generator=g)
    if planted:
        ids[:, 1:6] = (50 + grp)[:, None]
    mask = torch.ones(n, length, dtype=torch.long)
    mask[: n // 4, length - 3 :] = 0  # some padding
    ids[: n // 4, length - 3 :] = 0
    out = []
    for s in range(0, n, batch_size):
        b = {
            "input_ids": ids[s : s + batch_size],
            "attention_mask": mask[s : s + batch_size],
            "group": grp[s : s + batch_size],
        }
        if labels == "sequence":
            b["labels"] = ids[s : s + batch_size, 2] % 2
        elif labels == "token":
            lab = ids[s : s + batch_size] % 3
            lab[mask[s : s + batch_size] == 0] = -100
            b["labels"] = lab
        out.append(b)
    return out


def _logits(model, batches):
    with torch.no_grad():
        return torch.cat([model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits for b in batches])


@pytest.mark.parametrize(
    "arch,site",
    [("bert", "classifier"), ("roberta", "classifier.dense"), ("distilbert", "pre_classifier"), ("gpt2", "score")],
)
def test_fold_equals_eraser_then_head(arch, site):
    model = _models()[arch]
    batches = _batches()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit = fit_eraser(model, batches, 3)
    assert fit.site.name == site and fit.rows == 96
    with erase_head_input(model, fit.eraser, fit.site):
        reference = _logits(model, batches)
    folded = fold_eraser(model, fit)
    assert torch.allclose(_logits(folded, batches), reference, atol=1e-5)
    assert not torch.allclose(_logits(model, batches), reference, atol=1e-4)  # erasure does change the logits
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the caller's model is untouched


def test_erased_model_reloads_as_plain_transformers(tmp_path):
    model = _bert()
    batches = _batches(groups=2)
    erased, fit, info = erase_model(model, batches, 2)
    erased.save_pretrained(tmp_path)
    reloaded = tf.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with erase_head_input(model, fit.eraser):
        reference = _logits(model, batches)
    assert torch.allclose(_logits(reloaded, batches), reference, atol=1e-5)
    assert (
        info["head_layer"] == "classifier"
        and info["eraser_rank"] == 2
        and info["group_counts"] == [int((torch.cat([b["group"] for b in batches]) == k).sum()) for k in (0, 1)]
    )


def test_probe_falls_to_majority_on_a_controlled_bias_set():
    model = _bert()
    train, held_out = _batches(600, groups=2, planted=True, seed=1), _batches(400, groups=2, planted=True, seed=2)
    fit = fit_eraser(model, train, 2)
    cached = collect_head_inputs(model, held_out)
    before = leakage_probe(cached.x, cached.groups)
    after = leakage_probe(apply_eraser(fit, cached.x), cached.groups)
    majority = before["leakage_probe_majority_baseline"]
    assert before["leakage_probe_accuracy"] > 0.75  # the planted tokens make the group decodable
    assert after["leakage_probe_accuracy"] <= majority + 0.05
    orth = fit_eraser(model, train, 2, method="orth")
    assert leakage_probe(apply_eraser(orth, cached.x), cached.groups)["leakage_probe_accuracy"] <= majority + 0.05


def test_report_before_after():
    model = _bert()
    train = _batches(300, groups=2, planted=True, seed=1, labels="sequence")
    held = _batches(200, groups=2, planted=True, seed=2, labels="sequence")
    erased, fit, _ = erase_model(model, train, 2)
    report = erasure_report(model, erased, fit, held)
    assert report["leakage_probe_before"] > 0.75
    assert report["leakage_probe_after"] <= report["leakage_probe_majority_baseline"] + 0.05
    assert {"accuracy_before", "accuracy_after"} <= set(report) and report["probe_rows"] == 200


def test_refit_head_trains_then_folds_exactly():
    model = _bert()
    train = _batches(300, groups=2, planted=True, seed=1, labels="sequence")
    erased, fit, info = erase_model(model, train, 2, refit_head=True, refit_epochs=5, refit_lr=1e-2)
    assert info["refit_losses"][-1] < info["refit_losses"][0]
    plain, _, _ = erase_model(model, train, 2)
    assert not torch.allclose(erased.classifier.weight, plain.classifier.weight)
    # still an exact fold of (refit layer) o (eraser): the folded weight kills the erased directions
    assert torch.allclose(
        erased.classifier.weight.double() @ fit.eraser.proj_left.double(),
        torch.zeros(2, fit.eraser.proj_left.shape[1], dtype=torch.float64),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="refit"):
        erase_model(_models()["roberta"], _batches(labels="sequence"), 3, refit_head=True)


def test_token_classification_and_qa_shapes():
    ner = _bert(tf.BertForTokenClassification, num_labels=3)
    batches = _batches(labels="token")
    fit = fit_eraser(ner, batches, 3)
    n_tokens = sum(int((b["labels"] != -100).sum()) for b in batches)
    assert fit.site.name == "classifier" and fit.site.task == "token" and fit.rows == n_tokens
    with erase_head_input(ner, fit.eraser):
        reference = _logits(ner, batches)
    assert reference.shape == (96, 10, 3)
    assert torch.allclose(_logits(fold_eraser(ner, fit), batches), reference, atol=1e-5)

    qa = _bert(tf.BertForQuestionAnswering)
    qb = _batches()
    fit = fit_eraser(qa, qb, 3)
    assert fit.site.name == "qa_outputs" and fit.site.task == "qa"
    with erase_head_input(qa, fit.eraser):
        ref = [qa(input_ids=b["input_ids"], attention_mask=b["attention_mask"]) for b in qb]
    folded = fold_eraser(qa, fit)
    for b, r in zip(qb, ref):
        out = folded(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        assert torch.allclose(out.start_logits, r.start_logits, atol=1e-5)
        assert torch.allclose(out.end_logits, r.end_logits, atol=1e-5)


def test_streamed_statistics_merge_like_one_fitter():
    from concept_erasure import LeaceFitter

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(500, 6)))
    z = torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, 3, 500)), 3).double()
    whole = LeaceFitter(6, 3, dtype=torch.float64).update(x, z)
    parts = [
        LeaceFitter(6, 3, dtype=torch.float64).update(x[:180], z[:180]),
        LeaceFitter(6, 3, dtype=torch.float64).update(x[180:], z[180:]),
    ]
    merged = merge_leace_fitters(parts)
    assert int(merged.n) == 500
    for name in ("mean_x", "mean_z", "sigma_xx_", "sigma_xz_"):
        assert torch.allclose(getattr(merged, name), getattr(whole, name), atol=1e-9), name
    assert torch.allclose(merged.eraser.P, whole.eraser.P, atol=1e-9)


def test_quadratic_is_refused_by_the_fold_and_applies_to_cached_features():
    model = _bert()
    train = _batches(300, groups=2, planted=True, seed=1)
    fit = fit_eraser(model, train, 2, method="quadratic")
    with pytest.raises(ValueError, match="cannot be folded"):
        fold_eraser(model, fit)
    with pytest.raises(ValueError, match="cannot be folded"):
        erase_model(model, train, 2, method="quadratic")
    cached = collect_head_inputs(model, train)
    erased = quadratic_erase(fit, cached.x, cached.groups)
    assert erased.shape == cached.x.shape and not np.allclose(erased, cached.x)


def test_bad_inputs_and_intersectional_groups():
    model = _bert()
    with pytest.raises(ValueError, match="method"):
        fit_eraser(model, _batches(), 3, method="inlp")
    with pytest.raises(ValueError, match="out of range"):
        fit_eraser(model, _batches(groups=3), 2)
    one = _batches(groups=1)
    with pytest.raises(ValueError, match="two groups"):
        fit_eraser(model, one, 2)
    with pytest.raises(ValueError, match="supports"):
        find_head_layer(tf.BertModel(tf.BertConfig(**SMALL)))
    ids, names = combine_groups([["f", "m", "f", None, "m"], ["a", "a", "b", "a", "a"]])
    assert ids.tolist() == [0, 1, 2, -1, 1] and names == ["f|a", "m|a", "f|b"]


def _fit_on_shard(out_path):
    """Runs in each of 2 processes: fit on this process's half of the batches, statistics merged by accelerate."""
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    batches = _batches(groups=3)
    fit = fit_eraser(_bert(), batches[acc.process_index :: acc.num_processes], 3, accelerator=acc)
    if acc.is_main_process:
        torch.save(
            {"P": fit.eraser.P, "bias": fit.eraser.bias, "rows": fit.rows, "counts": fit.group_counts}, out_path
        )


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_give_the_single_process_eraser(tmp_path):
    """Two `accelerate launch` processes (gloo on CPU), each fitting on its half of the batches. A subprocess, not
    accelerate's fork-based debug_launcher: forking a process whose OpenMP pool is running deadlocks torch."""
    from test_distributed import _launch, _wait

    out = tmp_path / "fit.pt"
    _wait(_launch([__file__, str(out)]))
    got = torch.load(out)
    single = fit_eraser(_bert(), _batches(groups=3), 3)
    assert got["rows"] == single.rows and list(got["counts"]) == single.group_counts
    assert torch.allclose(got["P"], single.eraser.P, atol=1e-8)
    assert torch.allclose(got["bias"], single.eraser.bias, atol=1e-10)


if __name__ == "__main__":  # run by the two-process test under `accelerate launch`
    import sys

    _fit_on_shard(sys.argv[1])
