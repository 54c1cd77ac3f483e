"""Chunked `fairtune augment`: the same rows as augmenting everything at once, bounded memory, parallel chunks."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset

from fairtune.augment import CF_EDITS, CF_SOURCE, CounterfactualAugmenter, stream
from fairtune.augment.datasets import BatchAugmenter
from fairtune.augment.swapper import _COMPILED, Swapper
from fairtune.cli import main

AUG = CounterfactualAugmenter(axes=("gender", "names"), seed=0)
ROWS = [
    {"id": i, "text": t, "label": i % 2}
    for i, t in enumerate(
        ["He thanked his sister.", "The table is blue.", "Mary met her father.", "She said he was late.", "No one."]
        * 5
    )
]


def _jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _fn(columns):
    return BatchAugmenter(AUG.swapper, "text", "two_sided", ["text"])


@pytest.mark.parametrize("num_proc", [None, 2])
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_chunked_output_equals_whole_input(tmp_path, suffix: str, num_proc) -> None:
    src = tmp_path / "in.jsonl"
    _jsonl(src, ROWS)
    out = tmp_path / f"out{suffix}"
    stats = stream.augment_file(
        _fn, stream.open_source(src, "text", chunk_rows=3), out, task="text", edits_column=CF_EDITS, num_proc=num_proc
    )
    want = AUG.augment_rows(ROWS, task="text")
    assert stats.chunks == 9 and stats.rows_in == 25 and stats.rows_out == len(want)
    if suffix == ".jsonl":
        got = [json.loads(line) for line in out.read_text().splitlines()]
    elif suffix == ".json":
        got = json.loads(out.read_text())
        assert out.read_text() == json.dumps(want, ensure_ascii=False)  # the same bytes as one json.dump
    elif suffix == ".csv":
        got = Dataset.from_csv(str(out)).to_list()
        for r in got:
            r[CF_EDITS] = json.loads(r[CF_EDITS])
    else:
        got = pq.read_table(out).to_pylist()
    assert got == want  # cf_source / cf_origin are indices into the whole input, not the chunk
    assert [r[CF_SOURCE] for r in got][:5] == [-1, 0, -1, -1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", out.name]  # no worker shard left behind


def test_parquet_and_csv_inputs_are_read_in_chunks(tmp_path) -> None:
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "in.parquet", row_group_size=4)
    source = stream.open_source(tmp_path / "in.parquet", "text", chunk_rows=4)
    assert (source.total, source.unit) == (25, "rows")
    chunks = list(source.chunks())
    assert [len(c.rows) for c in chunks] == [4] * 6 + [1] and [c.start for c in chunks][:3] == [0, 4, 8]
    Dataset.from_list(ROWS).to_csv(str(tmp_path / "in.csv"), index=False)
    rows = [r for c in stream.open_source(tmp_path / "in.csv", "text", chunk_rows=7).chunks() for r in c.rows]
    assert rows == ROWS  # types inferred as in the file (ints stay ints)


def test_chunks_in_flight_are_bounded(tmp_path) -> None:
    """Memory is flat in the corpus size: the reader is never more than 4 * num_proc chunks ahead of the writer."""
    src = tmp_path / "in.jsonl"
    _jsonl(src, ROWS * 8)
    source = stream.open_source(src, "text", chunk_rows=2)
    read = [0]
    ahead = []
    inner = source.chunks

    def counting():
        for chunk in inner():
            read[0] += 1
            yield chunk

    source.chunks = counting
    written = [0]

    def progress(done, total, unit):
        written[0] += 1
        ahead.append(read[0] - written[0])

    stream.augment_file(
        _fn, source, tmp_path / "o.jsonl", task="text", edits_column=CF_EDITS, num_proc=2, progress=progress
    )
    assert written[0] == 100 and max(ahead) <= stream._IN_FLIGHT * 2 == 8
    assert ahead[-1] == 0


def test_progress_knows_the_total(tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    _jsonl(src, ROWS)
    seen = []
    stream.augment_file(
        _fn,
        stream.open_source(src, "text", chunk_rows=10),
        tmp_path / "o.jsonl",
        task="text",
        edits_column=CF_EDITS,
        progress=lambda done, total, unit: seen.append((done, total, unit)),
    )
    size = src.stat().st_size
    assert [s[1:] for s in seen] == [(size, "B")] * 3 and seen[-1][0] == size and seen[0][0] < seen[1][0]


def test_bad_jsonl_line_is_named(tmp_path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "He left"}\n{"text": oops}\n')
    with pytest.raises(ValueError, match=r"in.jsonl line 2 is not valid JSON"):
        [c.parsed() for c in stream.open_source(src, "text").chunks()]
    out = str(tmp_path / "o.jsonl")
    for extra in ([], ["--num-proc", "2", "--chunk-rows", "1"]):  # parsed in a worker: the same message
        assert main(["augment", "--task", "text", "--input", str(src), "--output", out, "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert "fairtune augment: error: --input:" in err and "line 2 is not valid JSON" in err
    src.write_text('["not", "an", "object"]\n')
    assert main(["augment", "--task", "text", "--input", str(src), "--output", out, "--no-progress"]) == 2
    assert "line 1 is a JSON list, not an object" in capsys.readouterr().err
    assert main(["augment", "--task", "text", "--input", str(src), "--output", str(src), "--no-progress"]) == 2
    assert "--output is the --input file" in capsys.readouterr().err
    src.write_text("")
    assert main(["augment", "--task", "text", "--input", str(src), "--output", out, "--no-progress"]) == 2
    assert "has no rows" in capsys.readouterr().err


def test_blank_lines_keep_row_indices_and_line_numbers(tmp_path) -> None:
    """Chunks are byte spans parsed where they are augmented: blank lines count for line numbers, not rows."""
    src = tmp_path / "in.jsonl"
    lines = [json.dumps(r) for r in ROWS]
    src.write_text("\n" + "\n \r\n".join(lines[:4]) + "\n\n" + "\n".join(lines[4:]) + "\n\n")
    for num_proc in (None, 2):
        out = tmp_path / f"o{num_proc}.jsonl"
        stream.augment_file(
            _fn, stream.open_source(src, "text", chunk_rows=2), out, task="text", edits_column=CF_EDITS,
            num_proc=num_proc,
        )  # fmt: skip
        assert [json.loads(line) for line in out.read_text().splitlines()] == AUG.augment_rows(ROWS, task="text")
    src.write_text(lines[0] + "\n\n\n" + lines[1] + "\n" + '{"text": oops}\n')
    with pytest.raises(ValueError, match=r"in.jsonl line 5 is not valid JSON"):
        [c.parsed() for c in stream.open_source(src, "text", chunk_rows=2).chunks()]


def test_lone_surrogate_is_named_not_a_traceback(tmp_path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "He left"}\n{"text": "She said \\ud800 to him"}\n')
    for extra in ([], ["--num-proc", "2", "--chunk-rows", "1"]):
        argv = ["augment", "--task", "text", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]
        assert main([*argv, "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert "lone UTF-16 surrogate '\\ud800'" in err and "Traceback" not in err


def test_cli_num_proc_and_chunks_give_the_same_file(tmp_path, capsys) -> None:
    src = tmp_path / "in.jsonl"
    _jsonl(src, ROWS)
    outs = []
    for extra in ([], ["--num-proc", "2", "--chunk-rows", "3"]):
        out = tmp_path / f"o{len(extra)}.jsonl"
        argv = ["augment", "--task", "text", "--input", str(src), "--output", str(out), "--axes", "gender,names"]
        assert main([*argv, *extra, "--no-progress"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert main(["augment", "--task", "text", "--input", str(src), "--output", str(out), "--num-proc", "0"]) == 2


def test_swapper_pickles_small_and_reuses_the_compiled_matcher() -> None:
    """A worker unpickling the augmenter per batch costs nothing: the matcher is built once per process."""
    sw = CounterfactualAugmenter(axes=("gender", "names", "names_race", "religion", "nationality")).swapper
    blob = pickle.dumps(sw)
    state = sw.__getstate__()
    assert set(state) == {"key", "seed", "matcher", "blob"} and isinstance(state["blob"], bytes)
    again = pickle.loads(blob)
    assert again._c is sw._c  # same process: the cached compiled matcher, not a rebuild
    _COMPILED.pop((sw.key, True))
    rebuilt = pickle.loads(blob)  # a fresh process: built once from the blob, then cached
    assert rebuilt._c is not sw._c and pickle.loads(blob)._c is rebuilt._c
    text = "He met Mary and a Muslim from Kenya."
    assert rebuilt.swap(text) == sw.swap(text)
    assert Swapper(sw.lexicons, seed=0).key == sw.key != Swapper(sw.lexicons[:1]).key


def test_bad_csv_and_parquet_inputs_are_named(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nHe left,1\nShe came,2,extra\n")
    out = str(tmp_path / "o.jsonl")
    assert main(["augment", "--task", "text", "--input", str(bad), "--output", out, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--input: {bad} after row" in err and "Fix that row" in err
    notpq = tmp_path / "x.parquet"
    notpq.write_text("not parquet")
    assert main(["augment", "--task", "text", "--input", str(notpq), "--output", out, "--no-progress"]) == 2
    assert "is not a readable Parquet file" in capsys.readouterr().err
    mixed = tmp_path / "mixed.jsonl"
    _jsonl(mixed, [{"text": "He left", "label": 1}, {"text": "She came", "label": "two"}])
    pq_out = str(tmp_path / "o.parquet")
    assert main(["augment", "--task", "text", "--input", str(mixed), "--output", pq_out, "--no-progress"]) == 2
    assert "do not make one Parquet schema" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_non_utf8_input_names_the_byte_and_the_fix(tmp_path, suffix: str, capsys) -> None:
    text = {
        ".csv": "text,label\nHe left,1\nMary is a café owner,0\n",
        ".jsonl": '{"text": "He left"}\n{"text": "Mary is a café owner"}\n',
        ".json": '[{"text": "He left"}, {"text": "Mary is a café owner"}]',
    }[suffix]
    src = tmp_path / f"in{suffix}"
    src.write_bytes(text.encode("latin-1"))
    argv = ["augment", "--task", "text", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    line = 1 if suffix == ".json" else 3 if suffix == ".csv" else 2
    assert f"--input: {src} is not UTF-8: byte 0xe9 at line {line}" in err and "latin-1" in err and "iconv" in err


def test_augmentation_imports_neither_torch_nor_datasets() -> None:
    """`fairtune augment` starts in a fraction of a second with ~30 MiB: the engine and the file loop need no torch."""
    code = "import sys, fairtune.augment, fairtune.augment.stream; print(sorted({'torch', 'datasets'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_shards_are_appended_without_sendfile(tmp_path, monkeypatch) -> None:
    """Where `os.sendfile` fails (or is missing), the shard is copied through a buffer: the same file."""
    src = tmp_path / "in.jsonl"
    _jsonl(src, ROWS)
    outs = []
    for broken in (False, True):
        if broken:

            def no_sendfile(*args):
                raise OSError(22, "Invalid argument")

            monkeypatch.setattr(stream.os, "sendfile", no_sendfile)
        out = tmp_path / f"o{broken}.json"
        stream.augment_file(
            _fn, stream.open_source(src, "text", chunk_rows=4), out, task="text", edits_column=CF_EDITS, num_proc=2
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and json.loads(outs[1]) == AUG.augment_rows(ROWS, task="text")


class _Failing:
    """An augmenter that fails on the third chunk: raising, raising what does not pickle, or killing its process."""

    def __init__(self, how: str) -> None:
        self.how = how

    def augment_rows(self, rows, indices):
        if indices.start >= 4:
            if self.how == "exit":
                os._exit(9)
            if self.how == "unpicklable":
                exc = LookupError("no such thing")
                exc.hook = lambda: None  # a lambda attribute: the exception cannot be pickled
                raise exc
            raise ValueError("in.jsonl line 5: a bad row. Fix: mend it.")
        return [dict(r, **{CF_SOURCE: -1}) for r in rows]


@pytest.mark.parametrize(
    "how, error, match",
    [
        ("raise", ValueError, r"line 5: a bad row"),
        ("unpicklable", RuntimeError, r"LookupError: no such thing"),
        ("exit", RuntimeError, r"worker process exited with code 9 .*Fix: lower --num-proc"),
    ],
)
def test_a_failing_worker_stops_the_run_with_its_error(tmp_path, how: str, error, match: str) -> None:
    """A worker's error (or its death) is raised in the reading process; no worker and no shard is left behind."""
    src = tmp_path / "in.jsonl"
    _jsonl(src, ROWS)
    with pytest.raises(error, match=match):
        stream.augment_file(
            lambda cols: _Failing(how), stream.open_source(src, "text", chunk_rows=2), tmp_path / "o.jsonl",
            task="text", edits_column=CF_EDITS, num_proc=2,
        )  # fmt: skip
    assert multiprocessing.active_children() == []
    assert not any(".shards-" in p.name for p in tmp_path.iterdir())


_ORPHAN_SCRIPT = """
import os, sys, time
from fairtune.augment import CF_EDITS, CF_SOURCE, stream

class Slow:
    def augment_rows(self, rows, indices):
        open(os.path.join(sys.argv[1], f"{os.getpid()}.pid"), "w").close()
        time.sleep(0.3)
        return [dict(r, **{CF_SOURCE: -1}) for r in rows]

src = os.path.join(sys.argv[1], "in.jsonl")
stream.augment_file(lambda cols: Slow(), stream.open_source(src, "text", chunk_rows=1), src + ".out.jsonl",
                    task="text", edits_column=CF_EDITS, num_proc=2)
"""


def test_workers_exit_when_the_reading_process_is_killed(tmp_path) -> None:
    """Each pipe has one reader and one writer: a worker sees EOF when the reading process dies (no orphans)."""
    _jsonl(tmp_path / "in.jsonl", ROWS * 4)
    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while len(pids := [int(p.stem) for p in tmp_path.glob("*.pid")]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pids) == 2, "the workers did not start"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in pids if _alive(pid)]
    for pid in alive:
        os.kill(pid, 9)
    assert not alive, "worker processes outlived the reading process"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
