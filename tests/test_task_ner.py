"""NER adapter: word alignment, labels, seqeval metrics, loss scaling, entity pooling, CLP alignment, end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from torch.nn import functional as F

from fairtune.config import DataArguments, FairTrainingArguments
from fairtune.metrics.ner import ner_metrics
from fairtune.tasks.base import EvalContext
from fairtune.tasks.ner import NerAdapter, conll_to_jsonl, invert_token_map, read_conll, sort_tags

SHARED = Path(__file__).resolve().parents[2] / "shared"
WNUT = SHARED / "data" / "wnut17"
BASE_WORDS = "he she his her him man woman john mary likes music and the a of in at is".split()
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789")


def make_word_tokenizer(path: Path, words: Iterable[str] = ()):
    """A lower-casing WordPiece tokenizer whose vocab holds `words` whole and any other word as characters."""
    from transformers import BertTokenizer

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS, *[f"##{c}" for c in CHARS]]
    vocab += list(".,!?'\"()-:;$%&/@#*+=<>[]_~") + [*BASE_WORDS, *sorted({w.lower() for w in words})]
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tok = BertTokenizer(vocab=str(path / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(path)
    return tok


def make_word_bert(path: Path, task: str, num_labels: int = 2, words: Iterable[str] = (), seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT for `task` (ner | qa) with `make_word_tokenizer`'s vocab, saved at `path`."""
    from transformers import BertConfig, BertForQuestionAnswering, BertForTokenClassification

    tok = make_word_tokenizer(path, words)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    {"ner": BertForTokenClassification, "qa": BertForQuestionAnswering}[task](config).save_pretrained(path)
    return path


def record_logs(monkeypatch) -> list[dict]:
    """Collect every dict FairTrainer logs (with its objective values merged in)."""
    from transformers import Trainer

    logs: list[dict] = []
    original = Trainer.log

    def log(self, values, start_time=None):
        logs.append(dict(values))
        return original(self, values, start_time)

    monkeypatch.setattr(Trainer, "log", log)
    return logs


def _data_args(**kw) -> DataArguments:
    return DataArguments(**{"max_length": 64, "group_column": None, **kw})


ROWS = [
    {"tokens": ["John", "likes", "xylophones"], "ner_tags": ["B-person", "O", "O"]},
    {"tokens": ["Mary", "Smithers", "in", "Zurich"], "ner_tags": ["B-person", "I-person", "O", "B-location"]},
]


def test_word_alignment_first_subtoken_and_label_all_tokens(tmp_path):
    tok = make_word_tokenizer(tmp_path / "tok")
    ds = Dataset.from_list(ROWS)
    labels = NerAdapter().resolve_labels(DatasetDict(train=ds), _data_args())
    assert labels == ["O", "B-location", "B-person", "I-person"]
    adapter = NerAdapter().configured(_data_args(), labels)
    out = adapter.preprocess(ds, tok, _data_args(ner_pooling="entity"), "train")
    row = out[0]
    # [CLS] john likes x ##y ##l ... [SEP]
    words = tok(ROWS[0]["tokens"], is_split_into_words=True).word_ids()
    assert row["labels"][0] == -100 and row["labels"][-1] == -100
    first = {w: i for i, w in reversed(list(enumerate(words))) if w is not None}
    for i, w in enumerate(words):
        if w is None:
            continue
        expected = adapter.label_list.index(ROWS[0]["ner_tags"][w]) if first[w] == i else -100
        assert row["labels"][i] == expected
        assert row["clp_word"][i] == (w if first[w] == i else -1)
    assert sum(1 for w in words if w == 2) > 3  # "xylophones" has many sub-tokens, only the first is labelled
    assert row["entity_mask"] == [int(w == 0) for w in words]
    # label_all_tokens: continuation sub-tokens of a B- word get its I- tag
    out_all = adapter.preprocess(ds, tok, _data_args(label_all_tokens=True), "train")
    words1 = tok(ROWS[1]["tokens"], is_split_into_words=True).word_ids()
    b_loc, i_per = adapter.label_list.index("B-location"), adapter.label_list.index("I-person")
    smithers = [lab for lab, w in zip(out_all[1]["labels"], words1) if w == 1]
    assert smithers == [i_per] * len(smithers) and len(smithers) > 1
    zurich = [lab for lab, w in zip(out_all[1]["labels"], words1) if w == 3]
    assert zurich[0] == b_loc and zurich[1:] == [b_loc] * (len(zurich) - 1)  # no I-location in the label list


def test_int_tags_take_names_from_classlabel_or_label_list(tmp_path):
    names = ["O", "B-person", "I-person"]
    feats = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    ds = Dataset.from_list([{"tokens": ["john", "is"], "ner_tags": [1, 0]}], features=feats)
    assert NerAdapter().resolve_labels(DatasetDict(train=ds), _data_args()) == names
    plain = Dataset.from_list([{"tokens": ["john", "is"], "ner_tags": [1, 0]}])
    with pytest.raises(ValueError, match="label_list"):
        NerAdapter().resolve_labels(DatasetDict(train=plain), _data_args())
    assert NerAdapter().resolve_labels(DatasetDict(train=plain), _data_args(label_list="O,B-person,I-person")) == names
    assert NerAdapter().resolve_labels(DatasetDict(train=plain), _data_args(label_list=["O", "B-x"])) == ["O", "B-x"]
    with pytest.raises(ValueError, match=r"outside the label list .*\[2\]"):
        three = Dataset.from_list([{"tokens": ["john", "is"], "ner_tags": [2, 0]}])
        NerAdapter().resolve_labels(DatasetDict(train=three), _data_args(label_list=["O", "B-x"]))
    both = DatasetDict(
        train=Dataset.from_list(ROWS), validation=Dataset.from_list([{"tokens": ["a"], "ner_tags": ["B-new"]}])
    )
    assert "B-new" in NerAdapter().resolve_labels(both, _data_args())  # string tags: the union of all splits
    with pytest.raises(ValueError, match="B-new"):
        NerAdapter().resolve_labels(both, _data_args(label_list=["O", "B-person", "I-person", "B-location"]))
    assert sort_tags(["I-per", "O", "B-per", "B-loc"]) == ["O", "B-loc", "B-per", "I-per"]


def test_seqeval_known_values():
    # seqeval's README example: one of two gold entities found, one of two predicted entities right.
    y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    m = ner_metrics(y_true, y_pred)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5) and m["f1"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["per_type"]["PER"]["f1"] == pytest.approx(1.0) and m["per_type"]["MISC"]["f1"] == pytest.approx(0.0)
    # 2 of 3 predicted right, 2 of 4 gold found: P = 2/3, R = 1/2, F1 = 4/7
    m = ner_metrics(
        [["B-LOC", "O", "B-PER", "I-PER", "B-ORG", "B-LOC"]], [["B-LOC", "O", "B-PER", "I-PER", "O", "B-ORG"]]
    )
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((2 / 3, 1 / 2, 4 / 7))


def test_evaluate_per_group_f1_and_gap():
    adapter = NerAdapter(label_list=["O", "B-PER", "I-PER"])
    labels = np.array([[-100, 1, 2, 0, -100], [-100, 1, 0, 0, -100], [-100, 0, 1, -100, -100]])
    pred = np.array([[0, 1, 2, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0]])
    logits = np.eye(3)[pred] * 5.0
    out = adapter.evaluate(
        {"logits": logits}, {"labels": labels, "group": np.array([0, 1, 0])}, EvalContext(["f", "m"], nested=True)
    )
    assert out["f1"] == pytest.approx(0.8)  # 2 of 3 gold entities, 2 of 2 predicted
    assert out["group_f_f1"] == pytest.approx(1.0) and out["group_m_f1"] == pytest.approx(0.0)
    assert out["f1_gap"] == pytest.approx(1.0) and out["per_group"]["f"]["count"] == 2


def test_gap_groups_restrict_the_gap_not_the_table(tmp_path):
    """`gap_groups: [female, male]`: the lexicon's `none`/`both` groups stay in the table but not in `f1_gap`."""
    from fairtune.tasks.base import group_metric_table

    scores = {
        0: {"f1": 0.6, "count": 10},
        1: {"f1": 0.5, "count": 12},
        2: {"f1": 0.2, "count": 50},
        3: {"f1": 0.9, "count": 0},
    }
    names = ["female", "male", "none", "both"]
    flat, table = group_metric_table(scores, names, ("f1",))
    assert flat["f1_gap"] == pytest.approx(0.4)  # every group with rows: 0.6 - 0.2
    flat, table = group_metric_table(scores, names, ("f1",), ["female", "male"])
    assert flat["f1_gap"] == pytest.approx(0.1) and set(table) == set(names)
    # through the adapter, given by the evaluation context (the trainer fills it from `gap_groups`)
    adapter = NerAdapter(label_list=["O", "B-PER", "I-PER"])
    labels = np.array([[-100, 1, 2, 0], [-100, 1, 0, 0], [-100, 0, 1, -100]])
    pred = np.array([[0, 1, 2, 0], [0, 0, 0, 0], [0, 0, 1, 0]])
    context = EvalContext(group_names=["f", "m", "x"], gap_groups=["f", "x"])
    out = adapter.evaluate(
        {"logits": np.eye(3)[pred] * 5.0}, {"labels": labels, "group": np.array([0, 1, 2])}, context
    )
    assert out["group_m_f1"] == pytest.approx(0.0)
    assert out["f1_gap"] == pytest.approx(out["group_f_f1"] - out["group_x_f1"])  # m is left out
    # set-up errors name the key
    from transformers import AutoModelForTokenClassification

    from fairtune.trainer import FairTrainer

    model = AutoModelForTokenClassification.from_pretrained(make_word_bert(tmp_path / "m", "ner", num_labels=3))
    for bad, message in ((["female", "nobody"], "'nobody' unknown"), (["female"], "at least two")):
        args = FairTrainingArguments(output_dir=str(tmp_path / "o"), gap_groups=bad, use_cpu=True, report_to="none")
        with pytest.raises(ValueError, match=f"`gap_groups`.*{message}"):
            FairTrainer(model=model, args=args, task_adapter=NerAdapter(), group_names=["female", "male", "none"])


def test_loss_sum_over_item_count_is_the_token_mean():
    adapter = NerAdapter(label_list=["O", "B", "I"])
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 3)
    y = torch.tensor([[-100, 0, 1, 2, -100, -100], [-100, 1, -100, -100, -100, -100], [-100, 0, 0, 0, 0, -100]])
    task = adapter.outputs({"logits": logits}, {"labels": y}, None, {})
    assert task.item_counts.tolist() == [3, 1, 4]
    assert adapter.count_items({"labels": y}) == 8
    mean = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=-100)
    assert torch.allclose(task.losses.sum() / task.item_counts.sum(), mean)
    assert torch.allclose(task.extras["group_losses"], task.losses / task.item_counts)


def test_entity_pooling_means_person_tokens():
    adapter = NerAdapter(pooling="entity")
    hidden = torch.arange(2 * 4 * 2, dtype=torch.float32).view(2, 4, 2)
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]])
    inputs = {"entity_mask": mask, "input_ids": torch.zeros(2, 4)}
    extras = adapter.pop_model_extras(inputs)
    assert "entity_mask" in extras and "entity_mask" not in inputs
    pooled = adapter.pool(hidden, None, extras)
    assert torch.allclose(pooled[0], hidden[0, 1:3].mean(0)) and torch.allclose(pooled[1], hidden[1, 0])
    assert torch.allclose(adapter.pool(hidden, None, {}), hidden[:, 0])  # no mask in the batch: the first token
    assert adapter.pool(hidden, None, extras) is not None and adapter.pooling == "entity"  # the adapter keeps no mask


def test_clp_aligns_words_with_differing_token_counts(tmp_path):
    """`John Smith likes music` -> `Maryanne likes music`: two words became one with more sub-tokens."""
    tok = make_word_tokenizer(tmp_path / "tok", words=["smith"])
    rows = [
        {
            "tokens": ["John", "Smith", "likes", "music"],
            "ner_tags": ["B-person", "I-person", "O", "O"],
            "cf_token_map": [[0, 1], [1, 2], [2, 3], [3, 4]],
            "pair_id": 7,
            "is_cf": 0,
        },
        {
            "tokens": ["Maryanne", "likes", "music"],
            "ner_tags": ["B-person", "O", "O"],
            "cf_token_map": [[0, 1], [0, 1], [1, 2], [2, 3]],
            "pair_id": 7,
            "is_cf": 1,
        },
    ]
    assert invert_token_map(rows[1]["cf_token_map"], 3) == [0, 2, 3]
    ds = Dataset.from_list(rows)
    adapter = NerAdapter(label_list=NerAdapter().resolve_labels(DatasetDict(train=ds), _data_args()))
    batch = adapter.collator(tok)([dict(r) for r in adapter.preprocess(ds, tok, _data_args(), "train")])
    words_a = tok(rows[0]["tokens"], is_split_into_words=True).word_ids()
    words_b = tok(rows[1]["tokens"], is_split_into_words=True).word_ids()
    assert words_b.count(0) > words_a.count(0)  # "maryanne" has more sub-tokens than "john"
    torch.manual_seed(0)
    logits = torch.randn(2, batch["input_ids"].shape[1], 3, requires_grad=True)
    a, b, mask = adapter.pair_log_probs({"logits": logits}, batch, torch.tensor([[0, 1]]))
    logp = logits.float().log_softmax(-1)
    pos_a = {w: words_a.index(w) for w in range(4)}
    pos_b = {w: words_b.index(w) for w in range(3)}
    expected = {0: (pos_a[0], pos_b[0]), 2: (pos_a[2], pos_b[1]), 3: (pos_a[3], pos_b[2])}  # "smith" unaligned
    assert mask[0].nonzero().flatten().tolist() == sorted(expected)
    for w, (ia, ib) in expected.items():
        assert torch.allclose(a[0, w], logp[0, ia]) and torch.allclose(b[0, w], logp[1, ib])
    from fairtune.objectives.counterfactual import pair_divergence

    pair_divergence(a, b, mask).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_unsupported_objective_fails_at_start_up(tmp_path):
    from transformers import AutoModelForTokenClassification

    from fairtune.trainer import FairTrainer

    path = make_word_bert(tmp_path / "m", "ner", num_labels=3)
    model = AutoModelForTokenClassification.from_pretrained(path)
    args = FairTrainingArguments(output_dir=str(tmp_path / "o"), dp_weight=1.0, use_cpu=True, report_to="none")
    with pytest.raises(ValueError, match=r"`dp_weight`: not supported for the ner task"):
        FairTrainer(model=model, args=args, task_adapter=NerAdapter(), group_names=["f", "m"])
    args = FairTrainingArguments(
        output_dir=str(tmp_path / "o"), adversary_weight=1.0, adversary_input="logits", use_cpu=True, report_to="none"
    )
    with pytest.raises(ValueError, match=r"`adversary_input: logits` is for sequence classification"):
        FairTrainer(model=model, args=args, task_adapter=NerAdapter(), group_names=["f", "m"])


@pytest.mark.skipif(not WNUT.is_dir(), reason="needs ../shared/data/wnut17")
def test_fairtune_train_ner_end_to_end(tmp_path, monkeypatch):
    from fairtune.cli import main

    logs = record_logs(monkeypatch)

    train_rows = [r for r in read_conll(WNUT / "wnut17train.conll") if "B-person" in r["ner_tags"]][:48]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in train_rows))
    valid = conll_to_jsonl(WNUT / "emerging.dev.conll", tmp_path / "dev.jsonl", limit=32)
    words = {
        w
        for r in train_rows + read_conll(WNUT / "emerging.dev.conll")[:32]
        for t in r["tokens"]
        for w in re.findall(r"[a-z]+", t.lower())
    }
    tags = {t for r in train_rows + read_conll(WNUT / "emerging.dev.conll")[:32] for t in r["ner_tags"]}
    model = make_word_bert(tmp_path / "model", "ner", num_labels=len(tags), words=words)
    out = tmp_path / "out"
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(model),
            "--task",
            "ner",
            "--train_file",
            str(train),
            "--validation_file",
            str(valid),
            "--output_dir",
            str(out),
            "--max_length",
            "64",
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
            "--ner_pooling",
            "entity",
            "--per_device_train_batch_size",
            "16",
            "--per_device_eval_batch_size",
            "16",
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
    results = json.loads((out / "all_results.json").read_text())
    val = results["validation"]
    for key in ("f1", "precision", "recall", "accuracy"):
        assert 0.0 <= val[key] <= 1.0, key
    assert val["per_group"] and set(val["per_group"]) <= {"female", "male", "both", "none"}
    config = json.loads((out / "fairtune_config.json").read_text())
    assert "B-person" in config["label_list"] and config["ner_pooling"] == "entity"
    assert any(log.get("clp_pairs", 0) > 0 for log in logs), logs  # CDA made pairs and CLP saw them
    assert any("adversary_loss" in log for log in logs) and any("group_dro" in log for log in logs)
    assert (out / "model.safetensors").is_file()


def test_byte_level_bpe_gets_a_prefix_space_for_pre_split_words(tmp_path):
    from transformers import AutoTokenizer, RobertaTokenizer

    from fairtune.tasks.ner import word_tokenizer

    chars = [chr(c) for c in range(33, 127)] + ["Ġ" + chr(c) for c in range(97, 123)]
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", "Ġ", *chars])}
    RobertaTokenizer(vocab=vocab, merges=[]).save_pretrained(tmp_path / "bpe")
    tok = AutoTokenizer.from_pretrained(tmp_path / "bpe")
    assert tok.add_prefix_space is False
    words = word_tokenizer(tok)(["hi", "there"], is_split_into_words=True).tokens()
    assert words.count("Ġ") + sum(w.startswith("Ġ") and len(w) > 1 for w in words) == 2  # as in running text
