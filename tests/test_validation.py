"""Validation at the door (fairtune.data.validation): file bytes, QA spans, NER tag schemes, rows per task."""

from __future__ import annotations

import json
import logging

import pytest
from datasets import Dataset, DatasetDict

from fairtune.config import DataArguments, FairTrainingArguments
from fairtune.data.loading import load_raw_datasets, read_data_file
from fairtune.data.validation import (
    answer_span_problem,
    check_data_file,
    iob1_to_iob2,
    read_text_checked,
    validate_raw_datasets,
)
from fairtune.errors import FairtuneError

CTX = "Mary scored 308 points in the game ."


def _args(**kw):
    return FairTrainingArguments(**{"output_dir": "/tmp/fairtune-test", "report_to": "none", "use_cpu": True, **kw})


# ---- files ---------------------------------------------------------------------------------------------------
def test_fairtune_error_is_a_value_error():
    assert issubclass(FairtuneError, ValueError)


def test_encoding_error_names_line_column_and_offset(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\x81"}\n')  # 0x81 is undefined in cp1252: not called latin-1
    with pytest.raises(FairtuneError, match=r"byte 0x81 at line 2, column 7 \(byte offset 16\)\. Re-encode") as err:
        check_data_file(path, "train_file")
    assert "cp1252 encoded" not in str(err.value)


def test_utf8_bom_is_read_and_offsets_count_it(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\nok,1\n")
    assert read_text_checked(path, "f").startswith("text,label")
    path.write_bytes(b"\xef\xbb\xbftext\n\xe9\n")
    with pytest.raises(FairtuneError, match=r"line 2, column 0 \(byte offset 8\)"):
        check_data_file(path, "f")


def test_valid_files_pass(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "caf\u00e9"}\n\n{"text": "b"}\n', encoding="utf-8")
    (tmp_path / "lines.json").write_text('{"text": "a"}\n{"text": "b"}\n')  # JSON Lines in a .json file
    (tmp_path / "list.json").write_text('[{"text": "a"}]')
    (tmp_path / "q.csv").write_text('text,label\n"a, with comma\nand a newline",1\nb,0\n')
    Dataset.from_list([{"text": "a"}]).to_parquet(str(tmp_path / "p.parquet"))
    for name in ("a.jsonl", "lines.json", "list.json", "q.csv", "p.parquet"):
        check_data_file(tmp_path / name, "train_file")


def test_csv_line_numbers_follow_quoted_newlines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,label\n"two\nlines",1\na,b,c\n')
    with pytest.raises(FairtuneError, match=r"t\.csv:4: 3 fields but the header has 2"):
        check_data_file(path, "train_file")


def test_datasets_failure_is_named(tmp_path, monkeypatch):
    """Whatever datasets still fails on becomes one error naming the file (with the reader's reason)."""
    import datasets

    def fail(*args, **kwargs):
        try:
            raise TypeError("Couldn't cast array of type int64 to string")
        except TypeError as inner:
            raise RuntimeError("An error occurred while generating the dataset") from inner

    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n')
    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(FairtuneError, match=r"`train_file`: datasets could not read .*t\.jsonl: Couldn't cast"):
        read_data_file(path, "train_file")


def test_load_raw_datasets_checks_every_split_file(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": 1}\n')
    (tmp_path / "v.jsonl").write_text('{"text": "a", "label": 1}\n{"text": \n')
    with pytest.raises(FairtuneError, match=r"`validation_file`: .*v\.jsonl:2: malformed JSON line"):
        load_raw_datasets(
            DataArguments(train_file=str(tmp_path / "t.jsonl"), validation_file=str(tmp_path / "v.jsonl"))
        )


# ---- QA ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, start, expected",
    [
        ("308", 12, None),
        ("308", 13, r"off by -1 .*set answer_start to 12"),
        ("308", 10, r"off by \+2"),
        ("309", 12, r"'309' is not in the context"),
        ("308", 36, r"answer_start 36 is past the end of the context \(36 characters\); the text is at 12"),
        ("points", 0, r"off by \+16"),
    ],
)
def test_answer_span_problem(text, start, expected):
    problem = answer_span_problem(CTX, text, start)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and __import__("re").search(expected, problem), problem


def _qa(rows):
    return DatasetDict({"train": Dataset.from_list(rows)})


def test_qa_valid_rows_pass_in_both_answer_layouts_and_with_no_answer():
    dict_rows = [
        {"id": "a", "context": CTX, "question": "q", "answers": {"text": ["308"], "answer_start": [12]}},
        {"id": "b", "context": CTX, "question": "q", "answers": {"text": [], "answer_start": []}},  # SQuAD v2
    ]
    validate_raw_datasets(_qa(dict_rows), DataArguments(), "qa")
    list_rows = [{"context": CTX, "question": "q", "answers": [{"text": "Mary", "answer_start": 0}]}]
    validate_raw_datasets(_qa(list_rows), DataArguments(), "qa")


def test_qa_error_names_the_file_row_and_id(tmp_path):
    rows = [{"id": "q-7", "context": CTX, "question": "q", "answers": {"text": ["308"], "answer_start": [13]}}]
    args = DataArguments(train_file=str(tmp_path / "train.jsonl"))
    with pytest.raises(FairtuneError, match=r"`train_file` .*train\.jsonl: row 0 \(id 'q-7'\): answer '308'"):
        validate_raw_datasets(_qa(rows), args, "qa")


def test_qa_second_answer_is_checked_too():
    rows = [{"context": CTX, "question": "q", "answers": {"text": ["308", "game"], "answer_start": [12, 31]}}]
    with pytest.raises(FairtuneError, match=r"answer 'game' at answer_start=31 is off by -1"):
        validate_raw_datasets(_qa(rows), DataArguments(), "qa")


def test_pipeline_validates_before_loading_any_model(tmp_path):
    """run_training raises the data error although the model does not even exist: the check comes first."""
    from fairtune.config import ModelArguments
    from fairtune.pipeline import run_training

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"context": CTX, "question": "q", "answers": {"text": ["308"], "answer_start": [99]}}))
    model_args = ModelArguments(model_name_or_path=str(tmp_path / "no_model"), task="qa")
    with pytest.raises(FairtuneError, match="past the end of the context"):
        run_training(model_args, DataArguments(train_file=str(path)), _args(output_dir=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


# ---- NER -----------------------------------------------------------------------------------------------------
def _ner(tags_rows, **kw):
    rows = [{"tokens": [f"w{i}" for i in range(len(t))], "ner_tags": t} for t in tags_rows]
    return DatasetDict({"train": Dataset.from_list(rows)})


def test_iob1_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
        "B-ORG",
    ]
    assert iob1_to_iob2(["B-PER", "I-PER", "O"]) == ["B-PER", "I-PER", "O"]


def test_iob1_string_tags_are_converted_with_a_warning(caplog):
    raw = _ner([["I-PER", "I-PER", "O"], ["B-LOC", "O", "O"]])
    with caplog.at_level(logging.WARNING):
        out = validate_raw_datasets(raw, DataArguments(), "ner")
    assert out["train"][0]["ner_tags"] == ["B-PER", "I-PER", "O"]
    assert out["train"][1]["ner_tags"] == ["B-LOC", "O", "O"]
    assert "converting IOB1 tags to IOB2 in 1 rows" in caplog.text and "row 0, token 0 'w0': 'I-PER'" in caplog.text


def test_iob2_and_iobes_pass_unchanged():
    raw = _ner([["B-PER", "I-PER", "O"]])
    ds = raw["train"]
    assert validate_raw_datasets(raw, DataArguments(), "ner")["train"] is ds
    raw = _ner([["S-PER", "O", "B-LOC"], ["B-LOC", "E-LOC", "O"]])
    ds = raw["train"]
    assert validate_raw_datasets(raw, DataArguments(), "ner")["train"] is ds


def test_ner_lists_several_rows():
    raw = _ner([["O"], ["O"], ["O"], ["O"]])
    raw["train"] = Dataset.from_list([{"tokens": ["a", "b"], "ner_tags": ["O"]}] * 5)
    with pytest.raises(FairtuneError, match=r"rows 0 \(2 tokens, 1 tags\), 1 \(2 tokens, 1 tags\), 2 .* and 2 more"):
        validate_raw_datasets(raw, DataArguments(), "ner")


def test_ner_classlabel_names_are_used():
    from datasets import ClassLabel, Features, Sequence, Value

    features = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=["O", "B-PER"]))})
    raw = DatasetDict({"train": Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [[1, 0]]}, features=features)})
    validate_raw_datasets(raw, DataArguments(), "ner")


def test_iob1_converted_data_trains(tmp_path, capsys):
    """IOB1 tags (strings) train after the logged conversion; the tag list then holds B- tags."""
    from conftest import make_tiny_bert

    from fairtune.cli import main

    model = make_tiny_bert(tmp_path / "m", "ner", num_labels=3)
    rows = [{"tokens": ["mary", "works", "in", "the", "lab"], "ner_tags": ["I-PER", "O", "O", "O", "O"]}] * 4
    train = tmp_path / "t.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = ["train", "--model_name_or_path", str(model), "--task", "ner", "--train_file", str(train)]
    argv += ["--output_dir", str(out), "--max_steps", "1", "--use_cpu", "true", "--save_strategy", "no"]
    assert main([*argv, "--report_to", "none", "--disable_tqdm", "true"]) == 0
    config = json.loads((out / "fairtune_config.json").read_text())
    assert "B-PER" in config["label_list"] and "I-PER" not in config["label_list"]
    assert (out / "model.safetensors").is_file()


# ---- classification and groups -------------------------------------------------------------------------------
def _cls(train, validation=None):
    d = DatasetDict({"train": Dataset.from_list(train)})
    if validation is not None:
        d["validation"] = Dataset.from_list(validation)
    return d


def test_unlabelled_evaluation_split_is_allowed_but_a_partial_one_is_not():
    train = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]
    validate_raw_datasets(_cls(train, [{"text": "c", "label": None}] * 2), DataArguments(), "classification")
    with pytest.raises(FairtuneError, match=r"the validation split.*`label_column` 'label' is missing .* row 1"):
        validate_raw_datasets(
            _cls(train, [{"text": "c", "label": "x"}, {"text": "d", "label": None}]), DataArguments(), "classification"
        )


def test_one_group_is_fine_without_a_group_objective_and_with_cda():
    rows = [{"text": "a", "label": "x", "gender": "female"}, {"text": "b", "label": "y", "gender": "female"}]
    validate_raw_datasets(_cls(rows), DataArguments(group_column="gender"), "classification", _args())
    validate_raw_datasets(
        _cls(rows), DataArguments(group_column="gender", cda="two_sided"), "classification", _args(dp_weight=1.0)
    )
    with pytest.raises(FairtuneError, match="one group 'female'"):
        validate_raw_datasets(_cls(rows), DataArguments(group_column="gender"), "classification", _args(dp_weight=1.0))


def test_empty_split_is_named(tmp_path):
    raw = DatasetDict({"train": Dataset.from_dict({"text": [], "label": []})})
    with pytest.raises(FairtuneError, match=r"`train_file` .*t\.jsonl: the train split has no rows"):
        validate_raw_datasets(raw, DataArguments(train_file=str(tmp_path / "t.jsonl")), "classification")
