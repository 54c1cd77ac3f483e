"""Counterfactual augmentation of text, QA and NER rows, through datasets.map and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, List, Value
from hypothesis import given, settings
from hypothesis import strategies as st

from fairtune.augment import CF_EDITS, CF_ORIGIN, CF_SOURCE, CF_TOKEN_MAP, CounterfactualAugmenter
from fairtune.augment.datasets import swap_ner_tokens
from fairtune.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AUG = CounterfactualAugmenter(axes=("gender", "names"), seed=0)

TEXT_ROWS = [
    {"text": "He thanked his sister.", "label": 1},
    {"text": "The table is blue.", "label": 0},
    {"text": "Mary met her father.", "label": 1},
]


def test_two_sided_pairs_each_original_with_its_counterfactual() -> None:
    out = AUG.augment_rows(TEXT_ROWS, task="classification", mode="two_sided")
    assert [r["text"] for r in out] == [
        "He thanked his sister.",
        "She thanked her brother.",
        "The table is blue.",
        "Mary met her father.",
        "James met his mother.",
    ]
    assert [r[CF_SOURCE] for r in out] == [-1, 0, -1, -1, 2]
    assert [r[CF_ORIGIN] for r in out] == [0, 0, 1, 2, 2]
    assert [r["label"] for r in out] == [1, 1, 0, 1, 1]
    assert out[1][CF_EDITS] == [[0, 0, 2, 0, 3], [0, 11, 14, 12, 15], [0, 15, 21, 16, 23]]
    assert out[0][CF_EDITS] == []


@pytest.mark.parametrize("mode", ["one_sided", "one-sided"])
def test_one_sided_replaces_in_place(mode: str) -> None:
    out = AUG.augment_rows(TEXT_ROWS, task="text", mode=mode)
    assert [r["text"] for r in out] == ["She thanked her brother.", "The table is blue.", "James met his mother."]
    assert [r[CF_SOURCE] for r in out] == [0, -1, 2]


def test_multiple_text_columns_share_names() -> None:
    rows = [{"premise": "Mary runs.", "hypothesis": "Mary is a woman.", "label": 0}]
    out = AUG.augment_rows(rows, task="text", text_columns=["premise", "hypothesis"], mode="one_sided")
    assert out[0]["premise"] == "James runs." and out[0]["hypothesis"] == "James is a man."
    assert {e[0] for e in out[0][CF_EDITS]} == {0, 1}


def test_bad_columns_and_modes_are_named() -> None:
    with pytest.raises(ValueError, match=r"column\(s\) \['body'\]"):
        AUG.augment_rows(TEXT_ROWS, task="text", text_columns=["body"])
    with pytest.raises(ValueError, match="two_sided, one_sided"):
        AUG.augment_rows(TEXT_ROWS, task="text", mode="both")
    with pytest.raises(ValueError, match="already has a `cf_source`"):
        AUG.augment_rows([{"text": "he", CF_SOURCE: -1}], task="text")


# -- QA ---------------------------------------------------------------------------------------------------------
def _qa_row(context: str, answers: list[str], question: str = "What did he give her?") -> dict:
    starts = [context.index(a) for a in answers]
    return {"id": "q", "context": context, "question": question, "answers": {"text": answers, "answer_start": starts}}


def test_qa_context_question_answers_swapped_together() -> None:
    row = _qa_row("Mary gave her son his hat. The king thanked her.", ["her son", "king", "Mary", "his hat"])
    row["question"] = "Whose hat did Mary give to her son?"
    out = AUG.augment_rows([row], task="qa", mode="one_sided")[0]
    assert out["context"] == "James gave his daughter her hat. The queen thanked him."
    assert out["question"] == "Whose hat did James give to his daughter?"
    assert out["answers"]["text"] == ["his daughter", "queen", "James", "her hat"]
    for t, s in zip(out["answers"]["text"], out["answers"]["answer_start"]):
        assert out["context"][s : s + len(t)] == t
    assert {e[0] for e in out[CF_EDITS]} == {0, 1}


def test_qa_bad_input_span_raises() -> None:
    row = _qa_row("He left.", ["left"])
    row["answers"]["answer_start"] = [0]
    with pytest.raises(ValueError, match=r"answer .left. at answer_start=0 is off by \+3.*set answer_start to 3"):
        AUG.augment_rows([row], task="qa")


_qa_words = st.sampled_from(["he", "She", "her", "his", "HIM", "mother", "Mary", "John", "king", "the", "ran", "car"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_qa_words, st.sampled_from([" ", ", ", ". ", "'s ", " ("])), min_size=1, max_size=15),
    st.data(),
)
def test_qa_spans_valid_on_random_contexts(parts: list, data: st.DataObject) -> None:
    context = "".join(w + sep for w, sep in parts)
    answers, starts = [], []
    for _ in range(data.draw(st.integers(1, 3))):
        s = data.draw(st.integers(0, len(context) - 1))
        e = data.draw(st.integers(s + 1, len(context)))
        answers.append(context[s:e])
        starts.append(s)
    row = {"id": "r", "context": context, "question": "Who?", "answers": {"text": answers, "answer_start": starts}}
    for out in AUG.augment_rows([row], task="qa", mode="two_sided"):
        for t, s in zip(out["answers"]["text"], out["answers"]["answer_start"]):
            assert out["context"][s : s + len(t)] == t
        if out[CF_SOURCE] >= 0:
            # An answer that covers whole swapped words becomes their swap.
            for t_old, s_old, t_new in zip(answers, starts, out["answers"]["text"]):
                edits = [e for e in out[CF_EDITS] if e[0] == 0 and e[1] < s_old + len(t_old) and s_old < e[2]]
                if all(s_old <= e[1] and e[2] <= s_old + len(t_old) for e in edits):
                    assert len(t_new) == len(t_old) + sum((e[4] - e[3]) - (e[2] - e[1]) for e in edits)


# -- NER --------------------------------------------------------------------------------------------------------
def test_ner_names_only_in_person_spans() -> None:
    tokens = ["May", "said", "her", "dad", "met", "Mary", "in", "Virginia", "with", "Virginia"]
    tags = ["B-person", "O", "O", "O", "O", "B-person", "O", "B-location", "O", "B-person"]
    new_tokens, new_tags, tmap = swap_ner_tokens(AUG.swapper, tokens, tags)
    names = AUG.swapper.lexicons[1]
    assert new_tokens[0] == names.mapping["may"] and new_tokens[9] == names.mapping["virginia"]  # person spans
    assert new_tokens[1:9] == ["said", "his", "mom", "met", "James", "in", "Virginia", "with"]  # location kept
    assert AUG.counterfactual("May said Virginia is nice.") == "May said Virginia is nice."  # free text
    assert new_tags == tags and tmap == [[i, i + 1] for i in range(len(tokens))]


def test_ner_token_count_change_rebuilds_tags(tmp_path) -> None:
    lex = tmp_path / "names.json"
    lex.write_text(
        json.dumps({"axis": "names", "replace": True, "capitalized_only": True, "pairs": [["Jo", "Mary Ann"]]})
    )
    aug = CounterfactualAugmenter(axes=("gender", "names"), lexicons=[lex])
    tokens = ["Mary", "Ann", "Smith", "met", "Jo", "Lee", "."]
    tags = ["B-PER", "I-PER", "I-PER", "O", "B-PER", "I-PER", "O"]
    new_tokens, new_tags, tmap = swap_ner_tokens(aug.swapper, tokens, tags)
    assert new_tokens == ["Jo", "Smith", "met", "Mary", "Ann", "Lee", "."]
    assert new_tags == ["B-PER", "I-PER", "O", "B-PER", "I-PER", "I-PER", "O"]
    assert tmap == [[0, 1], [0, 1], [1, 2], [2, 3], [3, 5], [5, 6], [6, 7]]
    # int tags with a ClassLabel feature go through datasets.map and come back as ints.
    names = ["O", "B-PER", "I-PER"]
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    ds = Dataset.from_dict({"tokens": [tokens], "ner_tags": [[names.index(t) for t in tags]]}, features=features)
    out = aug.augment_dataset(ds, task="ner", mode="two_sided")
    assert out[1]["ner_tags"] == [names.index(t) for t in new_tags] and out[1][CF_TOKEN_MAP] == tmap
    assert out[0][CF_TOKEN_MAP] == [[i, i + 1] for i in range(len(tokens))]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["he", "Her", "his", "Mary", "John", "Paris", "went", "home", ".", "mother"]),
            st.sampled_from(["O", "B-person", "I-person", "B-location"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_ner_lengths_and_token_map(pairs: list) -> None:
    tokens, tags = [p[0] for p in pairs], [p[1] for p in pairs]
    got = swap_ner_tokens(AUG.swapper, tokens, tags)
    if got is None:
        return
    new_tokens, new_tags, tmap = got
    assert len(new_tokens) == len(new_tags) and len(tmap) == len(tokens)
    assert tmap[0][0] == 0 and tmap[-1][1] == len(new_tokens)
    for (s0, e0), (s1, _e1) in zip(tmap, tmap[1:]):
        assert s0 < e0 and s1 in (s0, e0)


def test_ner_int_tags_without_names_need_label_names() -> None:
    rows = [{"tokens": ["Mary", "ran"], "ner_tags": [1, 0]}]
    with pytest.raises(ValueError, match="label_names"):
        AUG.augment_rows(rows, task="ner")
    out = AUG.augment_rows(rows, task="ner", label_names=["O", "B-PER"], mode="one_sided")
    assert out[0]["tokens"] == ["James", "ran"] and out[0]["ner_tags"] == [1, 0]


# -- datasets.map and the CLI -----------------------------------------------------------------------------------
def test_datasets_map_num_proc_matches_single_process() -> None:
    rows = [dict(r, text=f"{r['text']} #{i}") for i in range(10) for r in TEXT_ROWS]
    ds = Dataset.from_list(rows)
    one = AUG.augment_dataset(ds, task="text", batch_size=7)
    two = AUG.augment_dataset(ds, task="text", num_proc=2, batch_size=7)
    assert one.to_list() == two.to_list() == AUG.augment_rows(rows, task="text")
    assert len(two) == 50 and sum(s >= 0 for s in two[CF_SOURCE]) == 20
    for i, src in enumerate(two[CF_SOURCE]):
        if src >= 0:
            assert two[i - 1][CF_ORIGIN] == src and two[i - 1]["text"] == rows[src]["text"]


def test_cli_round_trip_jsonl_csv_and_squad(tmp_path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in TEXT_ROWS))
    out = tmp_path / "out.jsonl"
    code = main(
        ["augment", "--task", "classification", "--input", str(src), "--output", str(out), "--axes", "gender,names"]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r[CF_SOURCE] for r in rows] == [-1, 0, -1, -1, 2] and rows[4]["text"] == "James met his mother."

    csv_in, csv_out = tmp_path / "in.csv", tmp_path / "out.csv"
    csv_in.write_text("sentence,label\nHe left,1\nIt rained,0\n")
    argv = ["augment", "--task", "text", "--input", str(csv_in), "--output", str(csv_out), "--mode", "one-sided"]
    assert main([*argv, "--text-column", "sentence"]) == 0
    assert "She left" in csv_out.read_text()

    squad = {
        "version": "1.1",
        "data": [{"title": "t", "paragraphs": [{"context": "He met his wife.", "qas": [
            {"id": "a", "question": "Whom did he meet?", "answers": [{"text": "his wife", "answer_start": 7}]}
        ]}]}],
    }  # fmt: skip
    (tmp_path / "squad.json").write_text(json.dumps(squad))
    qa_out = tmp_path / "qa.parquet"
    argv = ["augment", "--task", "qa", "--input", str(tmp_path / "squad.json"), "--output", str(qa_out)]
    assert main(argv) == 0
    qa = Dataset.from_parquet(str(qa_out))
    assert qa[1]["context"] == "She met her husband." and qa[1]["answers"]["text"] == ["her husband"]
    assert qa[1][CF_EDITS][0] == [0, 0, 2, 0, 3]


def test_cli_errors_name_the_flag(tmp_path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in TEXT_ROWS))
    out = str(tmp_path / "o.jsonl")
    assert main(["augment", "--task", "text", "--input", str(src), "--output", out, "--text-column", "body"]) == 2
    assert "--text-column" in capsys.readouterr().err
    assert main(["augment", "--task", "text", "--input", str(src), "--output", out, "--axes", "race"]) == 2
    assert "--axes" in capsys.readouterr().err
    assert main(["augment", "--task", "qa", "--input", str(src), "--output", str(tmp_path / "o.csv")]) == 2
    assert "--output" in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED / "wnut17").is_dir(), reason="../shared/data not present")
def test_wnut17_rows_keep_lengths() -> None:
    sents, cur = [], []
    for line in (SHARED / "wnut17" / "emerging.dev.conll").read_text().splitlines():
        if not line.strip():
            if cur:
                sents.append(cur)
            cur = []
            continue
        tok, tag = line.split("\t")
        cur.append((tok, tag))
    rows = [{"tokens": [t for t, _ in s], "ner_tags": [g for _, g in s]} for s in sents[:400]]
    out = CounterfactualAugmenter(axes=("gender", "names")).augment_rows(rows, task="ner")
    assert sum(r[CF_SOURCE] >= 0 for r in out) > 20
    for r in out:
        assert len(r["tokens"]) == len(r["ner_tags"]) == r[CF_TOKEN_MAP][-1][1]


def test_dataset_fingerprint_follows_the_settings_not_the_run() -> None:
    """The same data and settings give the same fingerprint in every process (datasets' cache then hits)."""
    import os
    import subprocess
    import sys

    code = (
        "from datasets import Dataset; from fairtune.augment import CounterfactualAugmenter as C; "
        "ds = Dataset.from_list([{'text': 'He met Mary.', 'label': 1}]); "
        "print(C(axes=('gender', 'names', 'religion')).augment_dataset(ds)._fingerprint)"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed, "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(prints) == 1 and len(next(iter(prints))) == 32  # frozenset order differs between the two runs
    ds = Dataset.from_list(TEXT_ROWS)
    a = AUG.augment_dataset(ds, task="text")
    others = {
        CounterfactualAugmenter(axes=("gender", "names"), seed=1).augment_dataset(ds)._fingerprint,
        CounterfactualAugmenter(axes=("gender",), seed=0).augment_dataset(ds)._fingerprint,
        AUG.augment_dataset(ds, task="text", mode="one_sided")._fingerprint,
        AUG.augment_dataset(ds, task="text", mode="neutralize")._fingerprint,
    }
    assert a._fingerprint not in others and len(others) == 4
