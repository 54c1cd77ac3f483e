"""QA adapter: official SQuAD EM/F1, doc_stride features, post-processing to gold spans, span CLP, end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from test_task_ner import make_word_bert, make_word_tokenizer, record_logs
from torch.nn import functional as F

from fairtune.config import DataArguments, FairTrainingArguments
from fairtune.metrics.squad import exact_match_score, f1_score, normalize_answer, squad_metrics, squad_scores
from fairtune.tasks.base import EvalContext
from fairtune.tasks.qa import QaAdapter, flatten_squad, inverse_offset, squad_to_jsonl, word_coordinates

SHARED = Path(__file__).resolve().parents[2] / "shared"
XQUAD = SHARED / "data" / "squad_xquad_en" / "xquad.en.json"
needs_xquad = pytest.mark.skipif(not XQUAD.is_file(), reason="needs ../shared/data/squad_xquad_en")


def _words(rows) -> set[str]:
    return {w for r in rows for w in re.findall(r"[a-z]+", (r["context"] + " " + r["question"]).lower())}


def _xquad(n: int | None = None) -> list[dict]:
    rows = flatten_squad(json.loads(XQUAD.read_text(encoding="utf-8")))
    return rows[:n] if n else rows


def _with_fair_columns(rows: list[dict]) -> Dataset:
    n = len(rows)
    return (
        Dataset.from_list(rows)
        .add_column("group", [0] * n)
        .add_column("pair_id", [-1] * n)
        .add_column("is_cf", [0] * n)
    )


def test_squad_normalization_and_known_scores():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an Apple a day") == "apple day"
    assert exact_match_score("the Denver Broncos", "Denver Broncos.") == 1.0
    assert f1_score("cat sat", "a cat sat on the mat") == pytest.approx(2 / 3)  # P = 1, R = 1/2
    assert f1_score("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)  # token multisets overlap in 2
    assert f1_score("no overlap", "something else") == 0.0
    # max over gold answers
    assert squad_scores("Broncos", ["Denver Broncos", "Broncos"]) == (1.0, 1.0)
    em, f1 = squad_scores("Denver", ["Denver Broncos", "the Broncos of Denver"])
    assert em == 0.0 and f1 == pytest.approx(2 / 3)
    # SQuAD v2 no-answer: only the empty prediction scores
    assert squad_scores("", []) == (1.0, 1.0) and squad_scores("x", []) == (0.0, 0.0)
    m = squad_metrics({"a": "Denver Broncos", "b": "Denver"}, {"a": ["Denver Broncos"], "b": ["Denver Broncos"]})
    assert m["exact_match"] == pytest.approx(50.0) and m["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_features_label_answers_and_out_of_window_at_cls(tmp_path):
    tok = make_word_tokenizer(tmp_path / "tok", words="alpha beta gamma delta epsilon answer here filler".split())
    context = " ".join(["filler"] * 40) + " the answer is here " + " ".join(["filler"] * 40)
    start = context.index("answer is here")
    rows = [
        {
            "id": "q1",
            "question": "where is it",
            "context": context,
            "answers": {"text": ["answer is here"], "answer_start": [start]},
        }
    ]
    adapter = QaAdapter()
    feats = adapter.preprocess(_with_fair_columns(rows), tok, DataArguments(max_length=32, doc_stride=8), "validation")
    assert len(feats) > 3 and set(feats["group"]) == {0} and set(feats["pair_id"]) == {-1}
    found = 0
    for f in feats:
        s, e = f["start_positions"], f["end_positions"]
        if s == 0:
            assert e == 0  # answer not (wholly) in this window: CLS
            continue
        found += 1
        assert tok.decode(f["input_ids"][s : e + 1]) == "answer is here"
    assert found >= 1
    # SQuAD v2: an unanswerable example is labelled at CLS everywhere and switches on null answers
    v2 = QaAdapter()
    rows2 = rows + [
        {"id": "q2", "question": "who", "context": "filler filler", "answers": {"text": [], "answer_start": []}}
    ]
    raw2 = _with_fair_columns(rows2)
    feats2 = v2.preprocess(raw2, tok, DataArguments(max_length=32, doc_stride=8), "validation")
    model_feats, refs = v2.eval_references(raw2, feats2)
    assert refs.version_2_with_negative and v2.version_2_with_negative is None  # decided per split, not stored
    assert not v2.eval_references(_with_fair_columns(rows), feats)[1].version_2_with_negative
    assert "offsets" not in model_feats.column_names and len(refs.features) == len(feats2)
    assert model_feats[-1]["start_positions"] == 0 and model_feats[-1]["end_positions"] == 0


@needs_xquad
def test_postprocessing_recovers_gold_spans_over_windows(tmp_path):
    rows = _xquad(300)
    tok = make_word_tokenizer(tmp_path / "tok", _words(rows))
    adapter = QaAdapter()
    raw = _with_fair_columns(rows)
    feats, refs = adapter.eval_references(
        raw, adapter.preprocess(raw, tok, DataArguments(max_length=128, doc_stride=48), "validation")
    )
    assert len(feats) > 1.5 * len(rows)  # long contexts make several windows
    width = max(len(x) for x in feats["input_ids"])
    start = np.full((len(feats), width), -100.0)  # -100: what the trainer pads logits with
    end = np.full((len(feats), width), -100.0)
    for i, f in enumerate(feats):
        n = len(f["input_ids"])
        start[i, :n], end[i, :n] = 0.0, 0.0
        start[i, f["start_positions"]] = end[i, f["end_positions"]] = 10.0
    out = adapter.evaluate(
        {"start_logits": start, "end_logits": end},
        {"feature_id": np.array(feats["feature_id"]), "group": np.zeros(len(feats))},
        EvalContext(group_names=["all"], nested=True, references=refs),
    )
    with pytest.raises(ValueError, match="references"):
        adapter.evaluate({"start_logits": start, "end_logits": end}, {"feature_id": np.zeros(1)}, EvalContext())
    preds = out["predictions"]
    exact = [preds[r["id"]] == r["answers"]["text"][0] for r in rows]
    # every gold answer that starts and ends on token boundaries comes back character for character
    for r, ok in zip(rows, exact):
        if not ok:
            ctx, a = r["context"], r["answers"]
            s0 = a["answer_start"][0]
            e0 = s0 + len(a["text"][0])
            enc = tok(ctx, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
            assert not ({s0} <= {o[0] for o in enc} and {e0} <= {o[1] for o in enc}), (r["id"], preds[r["id"]])
    assert sum(exact) >= 0.99 * len(rows)
    assert out["exact_match"] >= 99.0 and out["group_all_f1"] == out["f1"]


def test_loss_is_the_mean_of_start_and_end_cross_entropy():
    adapter = QaAdapter()
    torch.manual_seed(0)
    s_logits, e_logits = torch.randn(4, 9), torch.randn(4, 9)
    sp, ep = torch.tensor([0, 3, 5, 8]), torch.tensor([0, 4, 7, 8])
    task = adapter.outputs(
        {"start_logits": s_logits, "end_logits": e_logits}, {"start_positions": sp, "end_positions": ep}, None, {}
    )
    expected = (F.cross_entropy(s_logits, sp) + F.cross_entropy(e_logits, ep)) / 2  # the HF head's own loss
    assert torch.allclose(task.losses.sum() / task.item_counts.sum(), expected)
    assert adapter.count_items({"start_positions": sp}) == 4


def test_inverse_offsets_and_word_coordinates():
    # source "John met her there." -> "Christopher met him there." (two edits)
    edits = [[0, 0, 4, 0, 11], [0, 9, 12, 16, 19]]
    target = "Christopher met him there."
    _, starts = word_coordinates(target, edits)
    assert starts == [0, 5, 9, 13]
    assert inverse_offset([(0, 4, 0, 11)], 3) == -1  # inside a replaced span
    assert inverse_offset([(0, 4, 0, 11), (9, 12, 16, 19)], 20) == 13


@pytest.mark.parametrize("max_length", [256, 40])
def test_clp_aligns_context_words_through_edits(tmp_path, max_length):
    from fairtune.augment import CounterfactualAugmenter
    from fairtune.objectives.counterfactual import find_pairs, pair_divergence

    context = "John met his sister at the station and she told him the news about the trip."
    row = {
        "id": "a",
        "question": "who did john meet",
        "context": context,
        "answers": {"text": ["his sister"], "answer_start": [context.index("his sister")]},
    }
    aug = CounterfactualAugmenter(axes=("gender", "names"), seed=0).augment_rows([row], task="qa")
    assert len(aug) == 2 and aug[1]["cf_edits"]
    cf_name = aug[1]["context"].split()[0]
    tok = make_word_tokenizer(tmp_path / "tok", _words([row]))  # the swapped name is split into characters
    assert len(tok.tokenize(cf_name)) > len(tok.tokenize("John"))
    rows = [dict(r, group=0, pair_id=0, is_cf=i) for i, r in enumerate(aug)]
    ds = Dataset.from_list(rows)
    adapter = QaAdapter()
    feats = adapter.preprocess(ds, tok, DataArguments(max_length=max_length, doc_stride=8), "train")
    batch = adapter.collator(tok)([dict(f) for f in feats])
    words = batch["clp_word"]
    # a logit per token such that every aligned word gets the same mass on both sides: g(word) - log(#tokens)
    g = {c: float(i % 5) for i, c in enumerate(sorted(set(words[words >= 0].tolist())))}
    logits = torch.full(words.shape, -30.0)
    for b in range(words.shape[0]):
        for c in set(words[b][words[b] >= 0].tolist()):
            idx = words[b] == c
            logits[b, idx] = g[c] - float(np.log(idx.sum()))
    pairs = find_pairs(batch["pair_id"], batch["is_cf"])
    start = logits.clone().requires_grad_(True)
    a, b, mask = adapter.pair_log_probs({"start_logits": start, "end_logits": logits}, batch, pairs)
    assert a.shape[:2] == (len(pairs), 2) and mask[0].all() and not mask[1:].any()
    div = pair_divergence(a, b, mask)
    if len(feats) == 2:  # one window each: identical word distributions, zero divergence
        assert float(div.detach().sum()) == pytest.approx(0.0, abs=1e-5)
    # every shared word (the swapped name at source coordinate 0 included) is in the support
    cf_rows = batch["is_cf"].bool()
    shared = set(words[~cf_rows].flatten().tolist()) & set(words[cf_rows].flatten().tolist()) - {-1}
    assert 0 in shared and int((a[0, 0] > -1e3).sum()) == int((b[0, 0] > -1e3).sum()) == len(shared)
    # moving mass onto the name on one side only is penalised
    bumped = logits.clone()
    bumped[cf_rows[:, None] & (words == 0)] += 3.0
    a2, b2, mask2 = adapter.pair_log_probs({"start_logits": bumped, "end_logits": bumped}, batch, pairs)
    assert float(pair_divergence(a2, b2, mask2).sum()) > float(div.detach().sum()) + 1e-3
    div.sum().backward()
    assert torch.isfinite(start.grad).all()


def test_unsupported_objective_fails_at_start_up(tmp_path):
    from transformers import AutoModelForQuestionAnswering

    from fairtune.trainer import FairTrainer

    path = make_word_bert(tmp_path / "m", "qa")
    model = AutoModelForQuestionAnswering.from_pretrained(path)
    args = FairTrainingArguments(output_dir=str(tmp_path / "o"), eo_weight=1.0, use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match=r"`eo_weight`: not supported for the qa task"):
        FairTrainer(model=model, args=args, task_adapter=QaAdapter(), group_names=["f", "m"])


@needs_xquad
def test_fairtune_train_qa_end_to_end(tmp_path, monkeypatch):
    from fairtune.cli import main

    logs = record_logs(monkeypatch)
    rows = _xquad()
    female = [r for r in rows if re.search(r"\b(she|her)\b", r["context"], re.I)]
    male = [r for r in rows if re.search(r"\b(he|his)\b", r["context"], re.I) and r not in female]
    gendered = female[:12] + male[:12]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in gendered[:24]))
    valid = squad_to_jsonl(XQUAD, tmp_path / "valid.jsonl", limit=16)
    model = make_word_bert(tmp_path / "model", "qa", words=_words(gendered[:24] + rows[:16]))
    out = tmp_path / "out"
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(model),
            "--task",
            "qa",
            "--train_file",
            str(train),
            "--validation_file",
            str(valid),
            "--output_dir",
            str(out),
            "--max_length",
            "128",
            "--doc_stride",
            "48",
            "--cda",
            "two_sided",
            "--cda_axes",
            "gender,names",
            "--group_from_lexicon",
            "gender",
            "--clp_weight",
            "1.0",
            "--adversary_weight",
            "0.5",
            "--group_dro_weight",
            "0.5",
            "--per_device_train_batch_size",
            "32",
            "--per_device_eval_batch_size",
            "32",
            "--num_train_epochs",
            "1",
            "--learning_rate",
            "0.001",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--use_cpu",
            "true",
            "--disable_tqdm",
            "true",
            "--seed",
            "0",
        ]
    )
    assert code == 0
    val = json.loads((out / "all_results.json").read_text())["validation"]
    assert 0.0 <= val["exact_match"] <= 100.0 and 0.0 <= val["f1"] <= 100.0
    assert len(val["predictions"]) == 16 and val["per_group"]
    assert any(log.get("clp_pairs", 0) > 0 and log.get("clp", 0) > 0 for log in logs), logs
    assert any("adversary_loss" in log for log in logs) and any("group_dro" in log for log in logs)
