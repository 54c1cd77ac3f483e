"""Mode `neutralize`: neutral terms instead of swapped ones, with exact offsets, QA spans and NER labels."""

from __future__ import annotations

import json
import pickle

import pytest
from datasets import Dataset

from fairtune.augment import CF_EDITS, CF_SOURCE, CF_TOKEN_MAP, CounterfactualAugmenter
from fairtune.augment.neutral import Neutralizer, neutral_data
from fairtune.cda import augment_split
from fairtune.cli import main
from fairtune.config import DataArguments

AUG = CounterfactualAugmenter(axes=("gender", "names"), seed=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("He is a man and she was a woman.", "They are a person and they were a person."),
        ("She says he always goes home.", "They say they always go home."),
        ("He's late; she’s been there. HE'S here.", "They're late; they’ve been there. THEY'RE here."),
        ("I gave her the book; the book is his.", "I gave them the book; the book is theirs."),
        ("I took her book to his house.", "I took their book to their house."),
        ("He himself told his mother-in-law.", "They themselves told their parent-in-law."),
        ("An actress met an uncle and a policeman.", "An actor met a relative and a police officer."),
        ("He doesn't know; she isn't sure.", "They don't know; they aren't sure."),
        ("He ran home.", "They ran home."),  # a past-tense verb needs no agreement
        ("She repairs bones; he perhaps watches TV and tries.", "They repair bones; they perhaps watch TV and tries."),
        ("He lies. She thus left. He news", "They lie. They thus left. They news"),
        ("The table is blue.", "The table is blue."),
    ],
)
def test_curated_neutral_forms(text: str, expected: str) -> None:
    assert AUG.neutralize(text) == expected


def test_names_become_distinct_neutral_names_per_person() -> None:
    out = AUG.neutralize("Mary met John. Later Mary thanked John and Mary's sister.")
    first, second = neutral_data()["names"][:2]
    assert out == f"{first} met {second}. Later {first} thanked {second} and {first}'s sibling."
    assert AUG.neutralize("May said Will is here.") == "May said Will is here."  # homographs kept in free text
    taken = AUG.neutralize(f"{first} met Mary.")  # a neutral name already in the example is not reused
    assert taken.startswith(f"{first} met ") and taken != f"{first} met {first}."


def test_edits_are_exact_and_neutralizer_pickles() -> None:
    text = "“He” said: his mother's dog bit her. Mary is his wife."
    neut = AUG.swapper_for("neutralize")
    res = neut.swap(text)
    for ed in res.edits:
        assert text[ed.src_start : ed.src_end] == ed.old and res.text[ed.tgt_start : ed.tgt_end] == ed.new
    again = pickle.loads(pickle.dumps(neut))
    assert isinstance(again, Neutralizer) and again.swap(text) == res


def test_qa_spans_and_ner_labels_stay_exact() -> None:
    rows = [
        {
            "id": "q1",
            "context": "He is a policeman. Mary married his brother.",
            "question": "Whom did Mary marry?",
            "answers": {"text": ["his brother", "a policeman"], "answer_start": [32, 6]},
        }
    ]
    out = AUG.augment_rows(rows, task="qa", mode="neutralize")
    assert len(out) == 1 and out[0][CF_SOURCE] == 0
    ctx, ans = out[0]["context"], out[0]["answers"]
    assert ctx.startswith("They are a police officer.") and ans["text"] == ["their sibling", "a police officer"]
    for t, s in zip(ans["text"], ans["answer_start"]):
        assert ctx[s : s + len(t)] == t
    name = neutral_data()["names"][0]
    assert out[0]["question"] == f"Whom did {name} marry?" and name in ctx  # the same person in both fields
    ner = [{"tokens": ["Mary", "met", "a", "policeman", "."], "ner_tags": ["B-PER", "O", "O", "O", "O"]}]
    got = AUG.augment_rows(ner, task="ner", mode="neutralize")[0]
    assert got["tokens"] == [name, "met", "a", "police", "officer", "."]
    assert got["ner_tags"] == ["B-PER", "O", "O", "O", "O", "O"]
    assert got[CF_TOKEN_MAP] == [[0, 1], [1, 2], [2, 3], [3, 5], [5, 6]]


def test_unsupported_axis_is_refused_with_the_fix(tmp_path, capsys) -> None:
    with pytest.raises(ValueError, match="no neutral form for axis 'religion'.*Fix: drop 'religion'"):
        CounterfactualAugmenter(axes=("gender", "religion")).neutralize("A Muslim man.")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "He left."}) + "\n")
    argv = ["augment", "--task", "text", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]
    assert main([*argv, "--mode", "neutralize", "--axes", "religion", "--no-progress"]) == 2
    assert "fairtune augment: error: --axes: mode neutralize" in capsys.readouterr().err
    assert main([*argv, "--mode", "neutralize", "--no-progress"]) == 0
    row = json.loads((tmp_path / "o.jsonl").read_text())
    assert row["text"] == "They left." and row[CF_SOURCE] == 0 and row[CF_EDITS] == [[0, 0, 2, 0, 4]]


def test_training_time_cda_neutralize_keeps_groups() -> None:
    args = DataArguments(cda="neutralize", cda_axes=["gender"], group_column="group")
    ds = Dataset.from_list(
        [{"text": "He is kind.", "label": 1, "group": "male"}, {"text": "It rained.", "label": 0, "group": "none"}]
    )
    out = augment_split(ds, args, "classification")
    assert out["text"] == ["They are kind.", "It rained."] and out["group"] == ["male", "none"]
    assert out[CF_SOURCE] == [0, -1]
    two = DataArguments(cda="two_sided", cda_axes=["gender"], group_column="group")
    assert augment_split(ds, two, "classification")["group"] == ["male", "female", "none"]


def test_neutralize_through_datasets_map_num_proc() -> None:
    rows = [{"text": f"He met Mary and her father, #{i}.", "label": i % 2} for i in range(12)]
    ds = Dataset.from_list(rows)
    one = AUG.augment_dataset(ds, task="text", mode="neutralize", batch_size=5)
    two = AUG.augment_dataset(ds, task="text", mode="neutralize", num_proc=2, batch_size=5)
    assert one.to_list() == two.to_list() == AUG.augment_rows(rows, task="text", mode="neutralize")
    assert one[0]["text"] == f"They met {neutral_data()['names'][0]} and their parent, #0."
