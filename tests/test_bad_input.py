"""Bad input never trains a model: one table of bad inputs across every command (issue 13).

Each case runs `fairtune.cli.main([...])` in-process and asserts exit code 2, a one-line message on stderr that
names the field or file (`fairtune <command>: ...`), and no traceback. Every QA/NER corruption case also asserts
that nothing was trained (no weights and no fairtune_config.json in `output_dir`). A few cases run through a
subprocess (`python -m fairtune`), as a user would.

`python tests/test_bad_input.py` prints the table (case, command, expected message) as Markdown.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# `fairtune augment` streams its input in chunks (its own reader): the encoding check there is its owner's

QA_OK = {
    "context": "Mary scored 308 points in the game .",
    "question": "how many points",
    "answers": {"text": ["308"], "answer_start": [12]},
}
NER_OK = {"tokens": ["Mary", "lives", "in", "Paris"], "ner_tags": ["B-PER", "O", "O", "B-LOC"]}


def _cls_rows(n: int = 8) -> list[dict]:
    from conftest import biased_rows

    return biased_rows(n, 0.5)


class Env:
    """Files and command lines for one case, in a fresh tmp dir."""

    def __init__(self, tmp: Path, model: Path) -> None:
        self.tmp, self.model, self.out = tmp, model, tmp / "out"

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def text(self, name: str, content: str) -> str:
        (self.tmp / name).write_text(content, encoding="utf-8")
        return self.path(name)

    def raw(self, name: str, content: bytes) -> str:
        (self.tmp / name).write_bytes(content)
        return self.path(name)

    def jsonl(self, name: str, rows: list[dict]) -> str:
        return self.text(name, "".join(json.dumps(r) + "\n" for r in rows))

    def train(self, *flags: str, train_file: str | None = "default", task: str = "classification") -> list[str]:
        """`fairtune train` with a tiny model, CPU, one step; `train_file` defaults to good data for the task."""
        if train_file == "default":
            rows = {"classification": _cls_rows(), "qa": [QA_OK] * 4, "ner": [NER_OK] * 4}[task]
            train_file = self.jsonl(f"good_{task}.jsonl", rows)
        argv = ["train", "--model_name_or_path", str(self.model), "--task", task, "--output_dir", str(self.out)]
        argv += ["--use_cpu", "true", "--max_steps", "1", "--save_strategy", "no", "--report_to", "none"]
        argv += ["--disable_tqdm", "true", "--group_column", "gender", "--max_length", "32"]
        if task != "classification":
            argv += ["--doc_stride", "8"] if task == "qa" else []
        if train_file:
            argv += ["--train_file", train_file]
        return argv + list(flags)

    def qa(self, rows: list[dict], *flags: str) -> list[str]:
        return self.train(*flags, train_file=self.jsonl("qa.jsonl", rows), task="qa")

    def ner(self, rows: list[dict], *flags: str) -> list[str]:
        return self.train(*flags, train_file=self.jsonl("ner.jsonl", rows), task="ner")

    def fake_run(self, name: str = "run", **config) -> Path:
        """A finished-looking run dir: fairtune_config.json, weights, a checkpoint."""
        run = self.tmp / name
        (run / "checkpoint-1").mkdir(parents=True)
        (run / "checkpoint-1" / "trainer_state.json").write_text("{}")
        (run / "model.safetensors").write_bytes(b"x")
        (run / "fairtune_config.json").write_text(json.dumps({"eo_weight": 0.0, **config}))
        return run


@dataclass
class Case:
    """One bad input: its command line (built in a tmp dir), the message it must give, and what it corrupts."""

    name: str
    build: Callable[[Env], list[str]]
    message: str  # a regex the stderr line must match (names the field or file)
    trains: bool = False  # a QA/NER corruption: assert that no model was written
    marks: tuple = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return self.name.split(":")[0]


def qa_row(**kw) -> dict:
    row = json.loads(json.dumps(QA_OK))
    for key, value in kw.items():
        if key in ("text", "answer_start"):
            row["answers"][key] = value
        else:
            row[key] = value
    return row


def ner_row(tokens=None, tags=None) -> dict:
    return {
        "tokens": tokens if tokens is not None else NER_OK["tokens"],
        "ner_tags": tags if tags is not None else NER_OK["ner_tags"],
    }


LATIN1_CSV = "text,label,gender\nMary is a caf\xe9 owner,nurse,female\nJohn operates,surgeon,male\n".encode("latin-1")
CP1252_CSV = "text,label,gender\nMary said \u201chi\u201d,nurse,female\nJohn,surgeon,male\n".encode("cp1252")


def _cls(rows_fn):
    return lambda e: e.train(train_file=e.jsonl("t.jsonl", rows_fn()))


def _with(**kw):
    def rows():
        rows = _cls_rows()
        rows[2].update(kw)
        return rows

    return rows


CASES: list[Case] = [
    # ---- train: data files ------------------------------------------------------------------------------------
    Case(
        "train: train_file missing",
        lambda e: e.train(train_file=e.path("nope.jsonl")),
        r"`train_file`.*nope\.jsonl.*does not exist",
    ),
    Case(
        "train: validation_file missing",
        lambda e: e.train("--validation_file", e.path("v.jsonl")),
        r"`validation_file`.*v\.jsonl",
    ),
    Case(
        "train: empty jsonl (0 bytes)",
        lambda e: e.train(train_file=e.text("t.jsonl", "")),
        r"`train_file`.*t\.jsonl is empty",
    ),
    Case(
        "train: whitespace-only jsonl",
        lambda e: e.train(train_file=e.text("t.jsonl", "\n \n")),
        r"`train_file`.*t\.jsonl is empty",
    ),
    Case("train: empty csv", lambda e: e.train(train_file=e.text("t.csv", "")), r"`train_file`.*t\.csv is empty"),
    Case(
        "train: csv header only",
        lambda e: e.train(train_file=e.text("t.csv", "text,label,gender\n")),
        r"`train_file`.*t\.csv has a header but no rows",
    ),
    Case(
        "train: csv row with an extra field",
        lambda e: e.train(train_file=e.text("t.csv", "text,label,gender\na,nurse,female\nb,c,nurse,male\n")),
        r"t\.csv:3: 4 fields but the header has 3",
    ),
    Case(
        "train: csv duplicate column",
        lambda e: e.train(train_file=e.text("t.csv", "text,text,label\na,b,c\n")),
        r"t\.csv:1: duplicate column",
    ),
    Case(
        "train: malformed jsonl line",
        lambda e: e.train(train_file=e.text("t.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label: 1}\n')),
        r"t\.jsonl:2: malformed JSON line",
    ),
    Case(
        "train: truncated jsonl line",
        lambda e: e.train(train_file=e.text("t.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "lab')),
        r"t\.jsonl:2: malformed JSON line",
    ),
    Case(
        "train: jsonl line not an object",
        lambda e: e.train(train_file=e.text("t.jsonl", '["a", "b"]\n')),
        r"t\.jsonl:1: a jsonl line must be a JSON object",
    ),
    Case(
        "train: malformed json document",
        lambda e: e.train(train_file=e.text("t.json", '[{"text": "a",}]')),
        r"t\.json:1: malformed JSON",
    ),
    Case(
        "train: empty json list",
        lambda e: e.train(train_file=e.text("t.json", "[]")),
        r"t\.json is an empty JSON list",
    ),
    Case(
        "train: json list of non-objects",
        lambda e: e.train(train_file=e.text("t.json", "[1, 2]")),
        r"t\.json: item 0 of the JSON list",
    ),
    Case("train: json scalar", lambda e: e.train(train_file=e.text("t.json", '"text"')), r"t\.json holds a JSON str"),
    Case(
        "train: non-UTF-8 byte in jsonl",
        lambda e: e.train(
            train_file=e.raw("t.jsonl", b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
        ),
        r"t\.jsonl is not UTF-8: byte 0xe9 at line 2, column 13 \(byte offset 42\)",
    ),
    Case(
        "train: latin-1 csv",
        lambda e: e.train(train_file=e.raw("t.csv", LATIN1_CSV)),
        r"t\.csv is not UTF-8.*line 2.*latin-1/cp1252.*iconv",
    ),
    Case(
        "train: cp1252 csv (Excel quotes)",
        lambda e: e.train(train_file=e.raw("t.csv", CP1252_CSV)),
        r"t\.csv is not UTF-8: byte 0x93 at line 2.*cp1252",
    ),
    Case(
        "train: parquet that is not parquet",
        lambda e: e.train(train_file=e.text("t.parquet", "text,label\n")),
        r"`train_file`.*t\.parquet is not a parquet file",
    ),
    Case(
        "train: directory as train_file",
        lambda e: (os.mkdir(e.path("d.jsonl")), e.train(train_file=e.path("d.jsonl")))[1],
        r"`train_file`.*d\.jsonl is a directory",
    ),
    Case("train: unsupported extension", lambda e: e.train(train_file=e.text("t.xlsx", "x")), r"`train_file`.*xlsx"),
    Case("train: no data at all", lambda e: e.train(train_file=None), r"no data: set `dataset_name` or `train_file`"),
    Case(
        "train: bad validation_file line",
        lambda e: e.train("--validation_file", e.text("v.jsonl", "{\n")),
        r"`validation_file`.*v\.jsonl:1: malformed JSON",
    ),
    # ---- train: classification rows ---------------------------------------------------------------------------
    Case(
        "train: text_column missing",
        lambda e: e.train("--text_column", "body"),
        r"`text_column` 'body' not found \(columns: \['text', 'label', 'gender'\]\)",
    ),
    Case(
        "train: label_column missing",
        lambda e: e.train("--label_column", "target"),
        r"`label_column` 'target' not found",
    ),
    Case("train: null label", _cls(_with(label=None)), r"`label_column` 'label' is missing .* in row 2"),
    Case("train: empty label", _cls(_with(label="")), r"`label_column` 'label' is missing .* in row 2"),
    Case(
        "train: NaN label in csv",
        lambda e: e.train(
            train_file=e.text("t.csv", "text,label,gender\na b,nurse,female\nc d,,male\ne f,surgeon,male\n")
        ),
        r"t\.csv: `label_column` 'label' is missing .* row 1",
    ),
    Case("train: null text", _cls(_with(text=None)), r"`text_column` 'text' is empty or not text in row 2"),
    Case("train: label that is a list", _cls(_with(label=["a", "b"])), r"`label_column`.*list"),
    Case(
        "train: single label value",
        lambda e: e.train(train_file=e.jsonl("t.jsonl", [dict(r, label="nurse") for r in _cls_rows()])),
        r"`label_column`.*single value",
    ),
    Case(
        "train: unknown validation label",
        lambda e: e.train("--validation_file", e.jsonl("v.jsonl", [dict(r, label="pilot") for r in _cls_rows(4)])),
        r"`label_column`.*never seen in training",
    ),
    Case("train: group value that is a list", _cls(_with(gender=["f", "m"])), r"`group_column` 'gender' holds a list"),
    Case(
        "train: group objective, group column absent",
        lambda e: e.train("--dp_weight", "1", "--group_column", "sex"),
        r"`group_column`.*\['sex'\]",
    ),
    Case(
        "train: group objective, one group",
        lambda e: e.train(
            "--eo_weight", "1", train_file=e.jsonl("t.jsonl", [dict(r, gender="female") for r in _cls_rows()])
        ),
        r"`group_column` 'gender' has one group 'female'",
    ),
    Case("train: model path missing", lambda e: e.train("--model_name_or_path", e.path("no_model")), r"no_model"),
    # ---- train: recipe and output dir -------------------------------------------------------------------------
    Case("train: recipe missing", lambda e: ["train", e.path("nope.yaml")], r"recipe .*nope\.yaml.* not found"),
    Case(
        "train: recipe not a mapping",
        lambda e: ["train", e.text("r.yaml", "- a\n- b\n")],
        r"recipe .*r\.yaml.* must be a flat mapping",
    ),
    Case("train: recipe with nested keys", lambda e: ["train", e.text("r.yaml", "a:\n  b: 1\n")], r"recipes are flat"),
    Case(
        "train: unknown recipe key",
        lambda e: e.train("--eo_wieght", "1"),
        r"unknown recipe key.*'eo_wieght' \(did you mean 'eo_weight'\?\)",
    ),
    Case("train: unknown task", lambda e: e.train("--task", "summarization"), r"`task`"),
    Case("train: unknown cda mode", lambda e: e.train("--cda", "three_sided"), r"`cda`"),
    Case("train: negative weight", lambda e: e.train("--eo_weight", "-1"), r"`eo_weight`.*>= 0"),
    Case(
        "train: output_dir holds a run",
        lambda e: e.train("--output_dir", str(e.fake_run())),
        r"`output_dir`: .*run already holds a run \(fairtune_config\.json; model\.safetensors; 1 checkpoint",
    ),
    Case(
        "train: output_dir is a file",
        lambda e: e.train("--output_dir", e.text("out.txt", "x")),
        r"`output_dir`: .*out\.txt is a file",
    ),
    Case(
        "train: resume true without checkpoints",
        lambda e: e.train("--resume_from_checkpoint", "true"),
        r"`resume_from_checkpoint`: true, but .*out has no checkpoint",
    ),
    Case(
        "train: resume from a missing path",
        lambda e: e.train("--resume_from_checkpoint", e.path("ckpt-x")),
        r"`resume_from_checkpoint`: '.*ckpt-x' is not a checkpoint folder",
    ),
    Case(
        "train: resume a run made with another config",
        lambda e: e.train("--output_dir", str(e.fake_run(eo_weight=1.0)), "--resume_from_checkpoint", "true"),
        r"`resume_from_checkpoint`: .*another configuration: eo_weight \(1\.0 -> 0\.0\)",
    ),
    Case(
        "train: resume a folder that is not a checkpoint",
        lambda e: (os.mkdir(e.path("c")), e.train("--resume_from_checkpoint", e.path("c")))[1],
        r"`resume_from_checkpoint`: .*has no trainer_state\.json",
    ),
    Case(
        "train: GPU accelerate config on a CPU machine",
        lambda e: e.train("--use_cpu", "false"),
        r"accelerate launch does not fit this machine: it starts 8 GPU process.*cpu_ddp\.yaml",
        env={"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "8", "ACCELERATE_MIXED_PRECISION": "bf16"},
    ),
    # ---- train: the lead's config half (typed values) ---------------------------------------------------------
    Case("train: non-numeric weight", lambda e: e.train("--eo_weight", "abc"), r"`eo_weight`"),
    Case("train: infinite weight", lambda e: e.train("--eo_weight", ".inf"), r"`eo_weight`"),
    Case("train: NaN weight", lambda e: e.train("--eo_weight", ".nan"), r"`eo_weight`"),
    Case(
        "train: non-numeric learning rate",
        lambda e: e.train("--learning_rate", "fast"),
        r"`?learning_rate`?",
    ),
    Case(
        "train: batch size 0",
        lambda e: e.train("--per_device_train_batch_size", "0"),
        r"`?per_device_train_batch_size`?",
    ),
    Case(
        "train: zero epochs",
        lambda e: e.train("--max_steps", "-1", "--num_train_epochs", "0"),
        r"`?num_train_epochs`?",
    ),
    # ---- train: QA rows (nothing may be trained) --------------------------------------------------------------
    Case(
        "train: QA answer_start off by one",
        lambda e: e.qa([QA_OK, qa_row(answer_start=[13])]),
        r"qa\.jsonl: row 1: answer '308' at answer_start=13 is off by -1 .*set answer_start to 12",
        trains=True,
    ),
    Case(
        "train: QA answer_start off by one (early)",
        lambda e: e.qa([qa_row(answer_start=[11])]),
        r"row 0: answer '308' at answer_start=11 is off by \+1",
        trains=True,
    ),
    Case(
        "train: QA answer not in the context",
        lambda e: e.qa([qa_row(text=["412"])]),
        r"row 0: answer '412' is not in the context",
        trains=True,
    ),
    Case(
        "train: QA answer_start past the context",
        lambda e: e.qa([qa_row(answer_start=[99])]),
        r"row 0: answer_start 99 is past the end of the context \(36 characters\)",
        trains=True,
    ),
    Case(
        "train: QA answer with other case",
        lambda e: e.qa([qa_row(text=["MARY"], answer_start=[0])]),
        r"not in the context \(it appears with other case",
        trains=True,
    ),
    Case(
        "train: QA negative answer_start",
        lambda e: e.qa([qa_row(answer_start=[-1])]),
        r"answer_start -1 must be a character offset",
        trains=True,
    ),
    Case(
        "train: QA texts and starts differ in length",
        lambda e: e.qa([qa_row(answer_start=[12, 13])]),
        r"`answers` has 1 texts but 2 answer_start",
        trains=True,
    ),
    Case(
        "train: QA answers not SQuAD-shaped",
        lambda e: e.qa([dict(QA_OK, answers="308")]),
        r"`answers` must be",
        trains=True,
    ),
    Case(
        "train: QA empty context",
        lambda e: e.qa([QA_OK, dict(QA_OK, context="")]),
        r"row 1: `context` is empty",
        trains=True,
    ),
    Case(
        "train: QA answers column missing",
        lambda e: e.qa([{"context": "a b", "question": "q"}]),
        r"column\(s\) \['answers'\] not found",
        trains=True,
    ),
    Case(
        "train: QA nested SQuAD json",
        lambda e: e.train(
            train_file=e.text("squad.json", json.dumps({"version": "1", "data": [{"title": "t", "paragraphs": []}]})),
            task="qa",
        ),
        r"squad_to_jsonl",
        trains=True,
    ),
    Case(
        "train: QA bad row in validation_file",
        lambda e: e.qa([QA_OK], "--validation_file", e.jsonl("v.jsonl", [qa_row(answer_start=[13])])),
        r"`validation_file`.*v\.jsonl: row 0: .*off by -1",
        trains=True,
    ),
    Case(
        "train: QA several bad rows",
        lambda e: e.qa([qa_row(answer_start=[13])] * 5),
        r"5 rows like this: rows 0, 1, 2 and 2 more",
        trains=True,
    ),
    # ---- train: NER rows (nothing may be trained) -------------------------------------------------------------
    Case(
        "train: NER more tags than tokens",
        lambda e: e.ner([NER_OK, ner_row(tags=["O"] * 5)]),
        r"one tag per token; row 1 \(4 tokens, 5 tags\)",
        trains=True,
    ),
    Case(
        "train: NER fewer tags than tokens",
        lambda e: e.ner([ner_row(tags=["O", "O"])]),
        r"row 0 \(4 tokens, 2 tags\)",
        trains=True,
    ),
    Case(
        "train: NER no tokens",
        lambda e: e.ner([NER_OK, ner_row(tokens=[], tags=[])]),
        r"row 1 \(0 tokens, 0 tags\)",
        trains=True,
    ),
    Case(
        "train: NER unknown prefix",
        lambda e: e.ner([ner_row(tags=["X-PER", "O", "O", "O"])]),
        r"unknown NER tag\(s\) 'X-PER' \(row 0\)",
        trains=True,
    ),
    Case(
        "train: NER tag without prefix",
        lambda e: e.ner([ner_row(tags=["PER", "O", "O", "LOC"])]),
        r"unknown NER tag\(s\) 'PER'",
        trains=True,
    ),
    Case(
        "train: NER lower-case O",
        lambda e: e.ner([ner_row(tags=["B-PER", "o", "O", "O"])]),
        r"unknown NER tag\(s\) 'o'",
        trains=True,
    ),
    Case(
        "train: NER tokens not a list",
        lambda e: e.ner([{"tokens": "Mary lives here", "ner_tags": ["B-PER", "O", "O"]}]),
        r"`tokens` must be a list of words",
        trains=True,
    ),
    Case(
        "train: NER tags column missing",
        lambda e: e.ner([{"tokens": ["a"], "tags": ["O"]}]),
        r"\['ner_tags'\] not found",
        trains=True,
    ),
    Case(
        "train: NER int tags outside label_list",
        lambda e: e.ner([ner_row(tags=[1, 0, 0, 7])], "--label_list", "O,B-PER,I-PER"),
        r"row 0 \(tag id 7\).*outside `label_list`",
        trains=True,
    ),
    Case(
        "train: NER int IOB1 tags",
        lambda e: e.ner([ner_row(tags=[2, 0, 0, 0])], "--label_list", "O,B-PER,I-PER"),
        r"IOB1 .* row 0, token 0 'Mary': 'I-PER'",
        trains=True,
    ),
    Case(
        "train: NER int tags without names",
        lambda e: e.ner([ner_row(tags=[1, 0, 0, 0])]),
        r"`label_list`: ner_tags are ints without names",
        trains=True,
    ),
    # ---- augment -----------------------------------------------------------------------------------------------
    Case(
        "augment: --input missing",
        lambda e: ["augment", "--task", "text", "--input", e.path("no.jsonl"), "--output", e.path("o.jsonl")],
        r"--input: .*no\.jsonl does not exist",
    ),
    Case(
        "augment: --input unknown format",
        lambda e: ["augment", "--task", "text", "--input", e.text("in.txt", "x"), "--output", e.path("o.jsonl")],
        r"--input: unknown format '\.txt'",
    ),
    Case(
        "augment: --output unknown format",
        lambda e: [
            "augment",
            "--task",
            "text",
            "--input",
            e.jsonl("in.jsonl", _cls_rows(2)),
            "--output",
            e.path("o.xlsx"),
        ],
        r"--output: unknown format",
    ),
    Case(
        "augment: --input malformed jsonl",
        lambda e: [
            "augment",
            "--task",
            "text",
            "--input",
            e.text("in.jsonl", '{"text": "a"}\n{oops\n'),
            "--output",
            e.path("o.jsonl"),
        ],
        r"--input`?: .*in\.jsonl(:| line )2",
    ),
    Case(
        "augment: --input latin-1 csv",
        lambda e: ["augment", "--task", "text", "--input", e.raw("in.csv", LATIN1_CSV), "--output", e.path("o.jsonl")],
        r"--input`?: .*in\.csv is not UTF-8.*latin-1",
    ),
    Case(
        "augment: --input empty",
        lambda e: ["augment", "--task", "text", "--input", e.text("in.jsonl", ""), "--output", e.path("o.jsonl")],
        r"--input`?: .*in\.jsonl (is empty|has no rows)",
    ),
    Case(
        "augment: csv input for qa",
        lambda e: ["augment", "--task", "qa", "--input", e.text("in.csv", "a\n1\n"), "--output", e.path("o.jsonl")],
        r"--input: csv holds only flat text rows",
    ),
    Case(
        "augment: unknown axis",
        lambda e: [
            "augment",
            "--task",
            "text",
            "--input",
            e.jsonl("in.jsonl", _cls_rows(2)),
            "--output",
            e.path("o.jsonl"),
            "--axes",
            "height",
        ],
        r"--axes: .*height",
    ),
    Case(
        "augment: --lexicon missing",
        lambda e: [
            "augment",
            "--task",
            "text",
            "--input",
            e.jsonl("in.jsonl", _cls_rows(2)),
            "--output",
            e.path("o.jsonl"),
            "--lexicon",
            e.path("lex.json"),
        ],
        r"--lexicon: .*lex\.json does not exist",
    ),
    Case(
        "augment: --text-column with qa",
        lambda e: [
            "augment",
            "--task",
            "qa",
            "--input",
            e.jsonl("in.jsonl", [QA_OK]),
            "--output",
            e.path("o.jsonl"),
            "--text-column",
            "x",
        ],
        r"--text-column",
    ),
    Case(
        "augment: QA answer off by one",
        lambda e: [
            "augment",
            "--task",
            "qa",
            "--input",
            e.jsonl("in.jsonl", [qa_row(answer_start=[13])]),
            "--output",
            e.path("o.jsonl"),
        ],
        r"answer '308' at answer_start=13 is off by -1 .*set answer_start to 12",
    ),
    # ---- evaluate ----------------------------------------------------------------------------------------------
    Case("evaluate: no suite", lambda e: ["evaluate"], r"no suite selected: give --suite"),
    Case(
        "evaluate: unknown suite",
        lambda e: ["evaluate", "--suite", "nosuch", "--output", e.path("e")],
        r"unknown suite 'nosuch'",
    ),
    Case(
        "evaluate: --predictions missing",
        lambda e: ["evaluate", "--suite", "group", "--predictions", e.path("p.jsonl"), "--output", e.path("e")],
        r"`--predictions`: .*p\.jsonl.* does not exist",
    ),
    Case(
        "evaluate: --predictions malformed",
        lambda e: [
            "evaluate",
            "--suite",
            "group",
            "--predictions",
            e.text("p.jsonl", "{oops\n"),
            "--output",
            e.path("e"),
        ],
        r"`--predictions`: .*p\.jsonl:1: malformed JSON line",
    ),
    Case(
        "evaluate: --predictions without columns",
        lambda e: [
            "evaluate",
            "--suite",
            "group",
            "--predictions",
            e.jsonl("p.jsonl", _cls_rows(2)),
            "--output",
            e.path("e"),
        ],
        r"p\.jsonl has no column\(s\) \['prediction', 'group'\]",
    ),
    Case(
        "evaluate: --model path missing",
        lambda e: ["evaluate", "--suite", "crows_pairs", "--model", e.path("m"), "--output", e.path("e")],
        r"--model: .*m' does not exist",
    ),
    Case("evaluate: recipe missing", lambda e: ["evaluate", e.path("eval.yaml")], r"eval\.yaml"),
    # ---- thresholds --------------------------------------------------------------------------------------------
    Case(
        "thresholds: --model missing",
        lambda e: ["thresholds", "--model", e.path("m"), "--data", e.jsonl("d.jsonl", _cls_rows(2))],
        r"--model: .*m' is not a local model dir",
    ),
    Case(
        "thresholds: --data missing",
        lambda e: ["thresholds", "--model", str(e.model), "--data", e.path("d.jsonl")],
        r"`--data`: .*d\.jsonl.* does not exist",
    ),
    Case(
        "thresholds: --data latin-1",
        lambda e: ["thresholds", "--model", str(e.model), "--data", e.raw("d.csv", LATIN1_CSV)],
        r"`--data`: .*d\.csv is not UTF-8",
    ),
    Case(
        "thresholds: --data malformed",
        lambda e: ["thresholds", "--model", str(e.model), "--data", e.text("d.jsonl", "{\n")],
        r"`--data`: .*d\.jsonl:1: malformed",
    ),
    Case(
        "thresholds: --test-data missing",
        lambda e: [
            "thresholds",
            "--model",
            str(e.model),
            "--data",
            e.jsonl("d.jsonl", _cls_rows(2)),
            "--test-data",
            e.path("t.jsonl"),
        ],
        r"`--test-data`: .*t\.jsonl",
    ),
    # ---- card / push -------------------------------------------------------------------------------------------
    Case(
        "card: --model-dir missing",
        lambda e: ["card", "--model-dir", e.path("run")],
        r"--model-dir: .*run is not a directory",
    ),
    Case(
        "card: --model-dir without a config",
        lambda e: (os.mkdir(e.path("run")), ["card", "--model-dir", e.path("run")])[1],
        r"--model-dir: .*run has no fairtune_config\.json",
    ),
    Case(
        "card: broken fairtune_config.json",
        lambda e: (
            os.mkdir(e.path("run")),
            e.text("run/fairtune_config.json", "{bad"),
            ["card", "--model-dir", e.path("run")],
        )[2],
        r"fairtune_config\.json.* is not valid JSON",
    ),
    Case(
        "card: --baseline missing",
        lambda e: ["card", "--model-dir", str(e.fake_run()), "--baseline", e.path("base")],
        r"--baseline: .*base does not exist",
    ),
    Case(
        "push: --model-dir missing",
        lambda e: ["push", "--model-dir", e.path("run"), "--repo-id", "org/name", "--dry-run"],
        r"--model-dir: .*run is not a directory",
    ),
    Case(
        "push: bad --repo-id",
        lambda e: ["push", "--model-dir", str(e.fake_run()), "--repo-id", "not a repo", "--dry-run"],
        r"--repo-id: 'not a repo' is not a Hub repo id",
    ),
    Case(
        "push: --model-dir without a config",
        lambda e: (
            os.mkdir(e.path("run")),
            ["push", "--model-dir", e.path("run"), "--repo-id", "org/name", "--dry-run"],
        )[1],
        r"--model-dir: .*has no fairtune_config\.json",
    ),
    # ---- sweep -------------------------------------------------------------------------------------------------
    Case(
        "sweep: --grid without values",
        lambda e: ["sweep", "--output", e.path("s"), "--grid", "eo_weight"],
        r"--grid 'eo_weight': write KEY=V1,V2",
    ),
    Case(
        "sweep: recipe missing",
        lambda e: ["sweep", e.path("r.yaml"), "--output", e.path("s"), "--grid", "eo_weight=0,1"],
        r"recipe .*r\.yaml.* not found",
    ),
    Case(
        "sweep: unknown --grid key",
        lambda e: ["sweep", "--output", e.path("s"), "--grid", "nokey=0,1"],
        r"unknown recipe key.*'nokey'",
    ),
    Case(
        "sweep: bad --seeds",
        lambda e: ["sweep", "--output", e.path("s"), "--grid", "eo_weight=0,1", "--seeds", "abc"],
        r"--seeds 'abc'",
    ),
    Case(
        "sweep: bad --select",
        lambda e: ["sweep", "--output", e.path("s"), "--grid", "eo_weight=0,1", "--select", "tpr<<3"],
        r"cannot read the constraint 'tpr<<3'",
    ),
    Case(
        "sweep: bad train_file",
        lambda e: [
            "sweep",
            "--output",
            e.path("s"),
            "--grid",
            "eo_weight=0,1",
            "--train_file",
            e.text("t.jsonl", "{\n"),
            "--model_name_or_path",
            str(e.model),
        ],
        r"`train_file`: .*t\.jsonl:1: malformed JSON line",
    ),
    Case(
        "sweep: QA answer off by one",
        lambda e: [
            "sweep",
            "--output",
            e.path("s"),
            "--grid",
            "clp_weight=0,1",
            "--task",
            "qa",
            "--train_file",
            e.jsonl("t.jsonl", [qa_row(answer_start=[13])]),
            "--model_name_or_path",
            str(e.model),
        ],
        r"row 0: answer '308' at answer_start=13 is off by -1",
        trains=True,
    ),
    Case(
        "sweep: non-numeric --grid value",
        lambda e: [
            "sweep",
            "--output",
            e.path("s"),
            "--grid",
            "eo_weight=abc,1",
            "--train_file",
            e.jsonl("t.jsonl", _cls_rows()),
        ],
        r"`eo_weight`",
    ),
    # ---- check-launch ------------------------------------------------------------------------------------------
    Case(
        "check-launch: ddp.yaml on a CPU machine",
        lambda e: ["check-launch", str(REPO / "recipes/accelerate_configs/ddp.yaml")],
        r"ddp\.yaml does not fit this machine: it starts 8 GPU process.*mixed precision bf16.*cpu_ddp\.yaml",
    ),
    Case(
        "check-launch: config missing",
        lambda e: ["check-launch", e.path("acc.yaml")],
        r"accelerate config .*acc\.yaml.* does not exist",
    ),
]


def _model_written(env: Env) -> list[str]:
    found = []
    for root in (env.out, env.tmp / "s"):
        if root.exists():
            found += [str(p) for p in root.rglob("*") if p.name in ("model.safetensors", "fairtune_config.json")]
    return found


@pytest.fixture
def env(tmp_path, tiny_bert_dir, monkeypatch) -> Env:
    monkeypatch.chdir(tmp_path)
    return Env(tmp_path, tiny_bert_dir)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_bad_input(case: Case, env: Env, capsys, monkeypatch):
    """Exit code 2, one line `fairtune <command>: ...` naming the field or file, no traceback, nothing trained."""
    from fairtune import launch_check
    from fairtune.cli import main

    for key in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key in [k for k in os.environ if k.startswith("ACCELERATE_")]:
        monkeypatch.delenv(key)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launch_check, "_gpu_count", lambda: 0)  # the launch cases describe a machine without GPUs
    argv = case.build(env)
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err[-2000:])
    assert "Traceback" not in err + captured.out
    lines = [line for line in err.splitlines() if line.startswith("fairtune ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fairtune {case.command}: "), lines[0]
    assert re.search(case.message, lines[0]), (case.message, lines[0])
    if case.trains or case.command == "train":
        assert not _model_written(env), _model_written(env)


def test_at_least_sixty_cases_across_every_command():
    """The issue asks for 60 bad inputs or more, across train, augment, evaluate, thresholds, card, push, sweep."""
    commands = {c.command for c in CASES}
    assert len(CASES) >= 60
    assert {"train", "augment", "evaluate", "thresholds", "card", "push", "sweep"} <= commands
    assert sum(c.trains for c in CASES) >= 20


# ---- through a subprocess, as a user runs it -----------------------------------------------------------------
def _run(*argv: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **(env or {})}
    for key in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "fairtune", *argv], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )


def test_subprocess_latin1_csv_and_qa_span(tmp_path, tiny_bert_dir):
    """A latin-1 CSV and an off-by-one QA span: exit code 2, one line, no traceback, no model."""
    e = Env(tmp_path, tiny_bert_dir)
    proc = _run(*e.train(train_file=e.raw("t.csv", LATIN1_CSV)), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("fairtune train: `train_file`: ")
    assert "latin-1/cp1252" in proc.stderr
    proc = _run(*e.qa([qa_row(answer_start=[13])]), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "off by -1" in proc.stderr and not _model_written(e)


def test_subprocess_debug_shows_the_traceback(tmp_path):
    """`fairtune --debug ...` shows the traceback the default hides."""
    proc = _run("--debug", "train", "--train_file", str(tmp_path / "nope.jsonl"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr
    proc = _run("train", "--train_file", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_debug_flag_in_process_raises(tmp_path):
    from fairtune.cli import main

    with pytest.raises(FileNotFoundError, match="`train_file`"):
        main(["--debug", "train", "--train_file", str(tmp_path / "nope.jsonl")])
    assert main(["train", "--train_file", str(tmp_path / "nope.jsonl")]) == 2


def test_help_is_fast_and_imports_nothing_heavy():
    """`fairtune --help` lists every command without importing torch, transformers or datasets."""
    code = (
        "import sys, time; t = time.perf_counter(); from fairtune.cli import main; main(['--help']); "
        "print('SECONDS', time.perf_counter() - t); "
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'datasets', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    seconds = float(proc.stdout.split("SECONDS")[1].split()[0])
    assert seconds < 0.5, seconds
    for command in ("train", "augment", "evaluate", "thresholds", "card", "push", "sweep", "demo", "check-launch"):
        assert command in proc.stdout


def test_overwrite_output_dir_replaces_an_existing_run(env, capsys):
    """`overwrite_output_dir: true` is the documented way past an existing run."""
    pytest.importorskip("fairtune.config")
    from fairtune.cli import main

    run = env.fake_run()
    code = main(env.train("--output_dir", str(run), "--overwrite_output_dir", "true"))
    assert code == 0, capsys.readouterr().err


def markdown_table(messages: dict[str, str] | None = None) -> str:
    """The table of cases as Markdown: command, bad input, and the message it gives (or its regex)."""
    head = "message" if messages else "message (regex)"
    lines = [f"| # | command | bad input | {head} |", "|---|---|---|---|"]
    for i, c in enumerate(CASES, 1):
        note = " (xfail: " + c.marks[0].kwargs["reason"] + ")" if c.marks else ""
        shown = messages.get(c.name, "") if messages else f"`{c.message}`"
        lines.append(f"| {i} | {c.command} | {c.name.split(': ', 1)[1]}{note} | {shown.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def collect_messages() -> dict[str, str]:
    """Run every case in a scratch dir and keep the line it prints (paths shown as <tmp>)."""
    import contextlib
    import io
    import tempfile

    from conftest import make_tiny_bert

    from fairtune import launch_check
    from fairtune.cli import main

    launch_check._gpu_count = lambda: 0
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as root:
        model = make_tiny_bert(Path(root) / "model")
        for i, case in enumerate(CASES):
            tmp = Path(root) / f"case{i}"
            tmp.mkdir()
            saved = dict(os.environ)
            os.environ.update(case.env)
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    code = main(case.build(Env(tmp, model)))
            except Exception as exc:  # noqa: BLE001 - an xfail case of the lead's half
                code, err = "traceback", io.StringIO(f"{type(exc).__name__}: {exc}")
            finally:
                os.environ.clear()
                os.environ.update(saved)
            line = [x for x in err.getvalue().splitlines() if x.startswith("fairtune ")] or [err.getvalue()[-200:]]
            text = " ".join(line[-1].replace(str(tmp), "<tmp>").replace(str(model), "<model>").split())
            out[case.name] = "exit 0: trains (today)" if code == 0 else f"exit {code}: {text}"
    return out


if __name__ == "__main__":  # pragma: no cover
    # python tests/test_bad_input.py > tests/bad_input_cases.md  (from the repository root, HF_HUB_OFFLINE=1)
    sys.path.insert(0, str(Path(__file__).parent))
    print("# Bad inputs and their messages (generated by `python tests/test_bad_input.py`)\n")
    print(markdown_table(collect_messages()))
