"""`fairtune erase --task ner|qa` end to end on tiny random BERTs, and its bad input (one line, exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_task_ner import make_word_bert, make_word_tokenizer

from fairtune.cli import main

TAGS = ["O", "B-person", "I-person"]
FEMALE = {"pronoun": ["she", "her"], "noun": "woman", "name": "mary"}
MALE = {"pronoun": ["he", "his"], "noun": "man", "name": "john"}
FILLER = "likes music and the a of in at is".split()
EXTRA_WORDS = ("what", "who", "does", "like")


def _ner_rows(n: int, seed: int) -> list[dict]:
    """Short tagged sentences that mention one gender (first name, pronouns, noun), with their `gender` column."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        female = i % 2 == 0
        lex = FEMALE if female else MALE
        words = [str(w) for w in rng.choice(FILLER, size=int(rng.integers(1, 3)))]
        tokens = [lex["name"].title(), lex["pronoun"][0], *words, lex["pronoun"][1], lex["noun"]]
        tags = ["B-person"] + ["O"] * (len(tokens) - 1)
        rows.append({"words": tokens, "tags": tags, "gender": "female" if female else "male"})
    return rows


def _qa_rows(n: int, seed: int) -> list[dict]:
    """SQuAD-style rows whose context and question mention one gender, with a `gender` column."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        female = i % 2 == 0
        lex = FEMALE if female else MALE
        filler = " ".join(str(w) for w in rng.choice(FILLER, size=int(rng.integers(6, 10))))
        context = f"{lex['name']} is at the music and {lex['pronoun'][0]} likes {filler} of {lex['pronoun'][1]} {lex['noun']}"
        answer = lex["name"]
        rows.append(
            {
                "id": f"q{i}",
                "question": f"who likes {lex['pronoun'][1]} music",
                "context": context,
                "answers": {"text": [answer], "answer_start": [context.index(answer)]},
                "gender": "female" if female else "male",
            }
        )
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _ner_model(path: Path) -> Path:
    """A tiny random token classifier whose config names the tags (as a model trained by `fairtune train`)."""
    from transformers import BertForTokenClassification

    make_word_bert(path, "ner", num_labels=len(TAGS), words=EXTRA_WORDS)
    model = BertForTokenClassification.from_pretrained(
        path, id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)}
    )
    model.save_pretrained(path)
    return path


def _classifier(path: Path) -> Path:
    """A tiny random sequence classifier (the wrong kind for `--task ner`)."""
    from transformers import BertConfig, BertForSequenceClassification

    tok = make_word_tokenizer(path)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def _logits(model, tokenizer, texts: list[str], field: str) -> torch.Tensor:
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return getattr(model(**enc), field)


def _one_line_error(capsys) -> str:
    """The command's stderr: one `fairtune erase:` line (the test's own model building may log before it)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines and "Traceback" not in "\n".join(lines), lines
    errors = [line for line in lines if line.startswith("fairtune erase:")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    return errors[0]


def test_erase_ner_end_to_end(tmp_path, capsys):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, BertForTokenClassification

    model_dir = _ner_model(tmp_path / "ner")
    train = _write(tmp_path / "train.jsonl", _ner_rows(80, seed=0))
    held = _write(tmp_path / "held.jsonl", _ner_rows(60, seed=1))
    out = tmp_path / "erased"
    argv = ["erase", "--task", "ner", "--model", str(model_dir), "--data", str(train), "--group-column", "gender"]
    argv += ["--tokens-column", "words", "--tags-column", "tags", "--eval-data", str(held), "--output", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert "held-out data" in capsys.readouterr().out
    report = json.loads((out / "erasure_report.json").read_text())
    assert report["task"] == "token" and report["head_layer"] == "classifier"
    assert sorted(report["groups"]) == ["female", "male"]
    assert report["examples"] == 80 and report["fit_rows"] > 80  # one row per labelled token
    held_out = report["held_out"]
    assert held_out["probe_rows"] > 60 and {"accuracy_before", "accuracy_after"} <= set(held_out)
    assert held_out["leakage_probe_before"] > held_out["leakage_probe_majority_baseline"] + 0.2
    assert held_out["leakage_probe_after"] < held_out["leakage_probe_before"]
    assert held_out["leakage_probe_after"] <= held_out["leakage_probe_majority_baseline"] + 0.15
    erased = AutoModelForTokenClassification.from_pretrained(out)
    assert type(erased) is BertForTokenClassification and erased.config.id2label[1] == "B-person"
    original = AutoModelForTokenClassification.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(out)
    texts = ["she likes music", "john is at the music"]
    assert not torch.allclose(_logits(erased, tok, texts, "logits"), _logits(original, tok, texts, "logits"))
    # head refit on the token rows, then the fold
    out2 = tmp_path / "refit"
    assert main([*argv[:-1], str(out2), "--refit-head", "--refit-epochs", "1"]) == 0
    assert "refit_losses" in json.loads((out2 / "erasure_report.json").read_text())


def test_erase_qa_end_to_end(tmp_path, capsys):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, BertForQuestionAnswering

    model_dir = make_word_bert(tmp_path / "qa", "qa", words=EXTRA_WORDS)
    train = _write(tmp_path / "train.jsonl", _qa_rows(40, seed=0))
    held = _write(tmp_path / "held.jsonl", _qa_rows(30, seed=1))
    out = tmp_path / "erased"
    argv = ["erase", "--task", "qa", "--model", str(model_dir), "--data", str(train), "--group-column", "gender"]
    argv += ["--eval-data", str(held), "--output", str(out), "--max-length", "24", "--doc-stride", "6"]
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "erasure_report.json").read_text())
    assert report["task"] == "qa" and report["head_layer"] == "qa_outputs"
    assert report["examples"] == 40 and report["features"] > 40  # long contexts became several windows
    held_out = report["held_out"]
    assert {"leakage_probe_before", "leakage_probe_after", "leakage_probe_majority_baseline"} <= set(held_out)
    assert held_out["leakage_probe_after"] < held_out["leakage_probe_before"]
    assert "accuracy_before" not in held_out  # QA has no class labels
    erased = AutoModelForQuestionAnswering.from_pretrained(out)
    assert type(erased) is BertForQuestionAnswering
    original = AutoModelForQuestionAnswering.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(out)
    texts = ["who likes music", "mary is at the music"]
    for field in ("start_logits", "end_logits"):
        assert not torch.allclose(_logits(erased, tok, texts, field), _logits(original, tok, texts, field))


@pytest.mark.parametrize("task", ["ner", "qa"])
def test_erase_groups_from_lexicon(tmp_path, capsys, task):
    if task == "ner":
        model_dir = _ner_model(tmp_path / "m")
        rows = [{"tokens": r["words"], "ner_tags": r["tags"]} for r in _ner_rows(60, seed=2)]
    else:
        model_dir = make_word_bert(tmp_path / "m", "qa", words=EXTRA_WORDS)
        rows = [{k: v for k, v in r.items() if k != "gender"} for r in _qa_rows(30, seed=2)]
    data = _write(tmp_path / "data.jsonl", rows)  # no group column: the lexicon labels each example
    out = tmp_path / "erased"
    argv = ["erase", "--task", task, "--model", str(model_dir), "--data", str(data), "--output", str(out)]
    assert main([*argv, "--group-from-lexicon", "gender"]) == 0, capsys.readouterr().err
    report = json.loads((out / "erasure_report.json").read_text())
    assert report["group_from_lexicon"] == "gender" and report["group_columns"] is None
    assert set(report["groups"]) == {"female", "male"} and min(report["group_counts"]) > 0
    assert "no --eval-data" in capsys.readouterr().out


def test_erase_task_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    ner_model = _ner_model(tmp_path / "ner")
    ner_rows = _ner_rows(20, seed=0)
    ner_data = _write(tmp_path / "ner.jsonl", ner_rows)
    qa_data = _write(tmp_path / "qa.jsonl", _qa_rows(10, seed=0))
    out = ["--output", str(tmp_path / "o")]
    ner = ["erase", "--task", "ner", "--model", str(ner_model), "--data", str(ner_data), *out]

    # a file without the default `tokens` column
    assert main([*ner, "--group-column", "gender"]) == 2
    err = _one_line_error(capsys)
    assert "--tokens-column" in err and "'tokens'" in err and "ner.jsonl" in err
    # a group column the file lacks
    assert main([*ner, "--tokens-column", "words", "--tags-column", "tags", "--group-column", "race"]) == 2
    err = _one_line_error(capsys)
    assert "--group-column" in err and "'race'" in err
    # tags the model does not know
    bad_tags = _write(tmp_path / "bad_tags.jsonl", [{**r, "tags": ["B-location"] * len(r["words"])} for r in ner_rows])
    argv = ["erase", "--task", "ner", "--model", str(ner_model), "--data", str(bad_tags), *out]
    assert main([*argv, "--tokens-column", "words", "--tags-column", "tags", "--group-column", "gender"]) == 2
    assert "B-location" in _one_line_error(capsys)

    qa_model = make_word_bert(tmp_path / "qa", "qa", words=EXTRA_WORDS)
    qa = ["erase", "--task", "qa", "--model", str(qa_model), "--data", str(qa_data), *out]
    # no group source at all
    assert main(qa) == 2
    err = _one_line_error(capsys)
    assert "--group-column" in err and "--group-from-lexicon" in err
    # an unknown lexicon axis, and both group sources at once
    assert main([*qa, "--group-from-lexicon", "zodiac"]) == 2
    assert "--group-from-lexicon 'zodiac'" in _one_line_error(capsys)
    assert main([*qa, "--group-from-lexicon", "gender", "--group-column", "gender"]) == 2
    assert "not both" in _one_line_error(capsys)
    # --refit-head has no labels to refit a QA head on
    assert main([*qa, "--group-column", "gender", "--refit-head"]) == 2
    assert "--refit-head" in _one_line_error(capsys)
    # a QA row whose answer is not where answer_start says
    rows = _qa_rows(10, seed=0)
    rows[3]["answers"]["answer_start"] = [rows[3]["answers"]["answer_start"][0] + 2]
    bad_qa = _write(tmp_path / "bad_qa.jsonl", rows)
    assert (
        main(
            [
                "erase",
                "--task",
                "qa",
                "--model",
                str(qa_model),
                "--data",
                str(bad_qa),
                *out,
                "--group-column",
                "gender",
            ]
        )
        == 2
    )
    err = _one_line_error(capsys)
    assert "--data" in err and "bad_qa.jsonl" in err and "row 3" in err

    # a sequence classifier passed as an NER model
    clf = _classifier(tmp_path / "clf")
    argv = ["erase", "--task", "ner", "--model", str(clf), "--data", str(ner_data), *out, "--group-column", "gender"]
    assert main([*argv, "--tokens-column", "words", "--tags-column", "tags"]) == 2
    err = _one_line_error(capsys)
    assert "--task classification" in err and "BertForSequenceClassification" in err
    # classification keeps its own group flag
    argv = ["erase", "--model", str(clf), "--data", str(ner_data), *out, "--group-from-lexicon", "gender"]
    assert main(argv) == 2
    assert "--group-column" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()  # nothing was written on bad input
