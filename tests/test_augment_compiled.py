"""The Cython-compiled engine (`fairtune.augment._engine_c`) is `_engine.py` run faster: same output, picked safely."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairtune.augment import swapper
from fairtune.augment.datasets import person_spans
from fairtune.augment.lexicon import resolve_lexicons

_python = importlib.import_module("fairtune.augment._engine")
_compiled = pytest.importorskip("fairtune.augment._engine_c", reason="the compiled engine is not built here")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_ALL = ("gender", "names", "names_race", "religion", "nationality")
_TEXTS = [
    "He’s İstanbul's HE hE Mr. Brown, mr, MR. and Mary-Kate; ſhe K and the theme",
    "Théo and he, hé, heé, “she” said: Mary Smith met John Garcia; later Garcia left.",
    "A Muslim and an Atheist; American men, Chinese women: his father-in-law, Mrs. Jones.",
    "May, Will and Paris met June. mary, WILL, MARY! O'Brien and Ann-Marie. She gave her book to him; it is his.",
    "In Sri Lanka a Sri Lankan Hindu, an In and an An met Kim Lee in Seoul; the fiancée of Zoë Smith é-Smith.",
    "",
]


def _outputs(engine: types.ModuleType, texts: list[str], seed: int) -> list:
    """Everything the engine API returns for `texts`: swaps with edits, counterfactuals, shared fields, terms."""
    sw = engine.Swapper(resolve_lexicons(_ALL), seed=seed)
    out = []
    for t in texts:
        state = sw.new_state([t, t.upper()])
        out.append(
            (
                sw.swap(t),
                sw.counterfactual(t),
                sw.swap_fields([t, t.lower()]),
                [sw.swap(t, state=state), sw.swap(t.upper(), state=state)],
                sw.terms_in(t),
            )
        )
    return [repr(o) for o in out]  # the two engines' classes differ; their reprs hold every field


def _xquad(limit: int) -> list[str]:
    data = json.loads((SHARED / "squad_xquad_en" / "xquad.en.json").read_text(encoding="utf-8"))
    texts = [p["context"] for art in data["data"] for p in art["paragraphs"]]
    texts += [qa["question"] for art in data["data"] for p in art["paragraphs"] for qa in p["qas"]]
    return texts[:limit]


def test_the_compiled_engine_is_in_use_when_built() -> None:
    if os.environ.get("FAIRTUNE_NO_EXTENSIONS"):
        pytest.skip("FAIRTUNE_NO_EXTENSIONS is set")
    assert swapper.engine is _compiled and swapper.engine_reason == "compiled"
    assert swapper.Swapper is _compiled.Swapper and swapper.Swapper.__module__ == "fairtune.augment.swapper"


def test_the_compiled_copy_records_the_source_it_was_built_from() -> None:
    assert _compiled._SOURCE_SHA256 == swapper.source_digest()


def test_a_stale_compiled_copy_is_not_run(tmp_path: Path) -> None:
    """An edited `_engine.py` (editable install, no rebuild): the Python file runs, with a warning naming the fix."""
    stale = types.SimpleNamespace(_SOURCE_SHA256="0" * 64)
    with pytest.warns(RuntimeWarning, match=r"changed after .*_engine_c was compiled.*Fix: rebuild it"):
        engine, reason = swapper.select_engine(stale)
    assert engine is _python and reason == "the compiled engine is stale"
    assert swapper.select_engine(_compiled) == (_compiled, "compiled")
    assert swapper.select_engine(None)[0] is _python


def test_a_compiled_copy_without_its_source_beside_it_is_run(tmp_path: Path) -> None:
    """An install that ships no .py sources: nothing to compare with, so the compiled copy runs (no crash)."""
    assert swapper.select_engine(_compiled, tmp_path / "_engine.py") == (_compiled, "compiled")


def test_no_extensions_env_runs_the_python_engine(monkeypatch) -> None:
    monkeypatch.setenv("FAIRTUNE_NO_EXTENSIONS", "1")
    assert swapper.select_engine(_compiled) == (_python, "FAIRTUNE_NO_EXTENSIONS is set")


@pytest.mark.parametrize("seed", [0, 7])
def test_both_engines_give_the_same_output(seed: int) -> None:
    texts = _TEXTS + [t.replace("Muslim", "Kenyan").title() for t in _TEXTS]
    if (SHARED / "squad_xquad_en").is_dir():
        texts += _xquad(600)  # real paragraphs and questions: every axis swaps somewhere
    assert _outputs(_compiled, texts, seed) == _outputs(_python, texts, seed)


@pytest.mark.skipif(not (SHARED / "wnut17").is_dir(), reason="../shared/data not present")
def test_both_engines_swap_names_in_person_spans_alike() -> None:
    """NER rows: names swap only inside person spans, homographs too (the full automaton, not the free one)."""
    sents, toks, tags = [], [], []
    for line in (SHARED / "wnut17" / "emerging.dev.conll").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if toks:
                sents.append((toks, tags))
            toks, tags = [], []
            continue
        tok, tag = line.split("\t")[:2] if "\t" in line else line.split()[:2]
        toks.append(tok)
        tags.append(tag)
    got = {}
    for engine in (_python, _compiled):
        sw = engine.Swapper(resolve_lexicons(_ALL), seed=1)
        got[engine] = [
            repr(sw.swap(" ".join(t), state=sw.new_state([" ".join(t)]), name_spans=person_spans(t, g)))
            for t, g in sents
        ]
    assert got[_compiled] == got[_python]
    assert sum("Edit(" in r for r in got[_python]) > 50  # the rows exercise the span path


_PIECES = st.sampled_from(
    ["he", "She", "HIS", "her", "Muslim", "Hindu", "American", "Sri Lankan", "Mary", "John", "Smith", "Kim", "Lee",
     "In", "an", "a", "May", "Will", "the", "café", "Zoë", "Mr.", "O'Brien", "x", "gave", "to"]
)  # fmt: skip
_SEPS = st.sampled_from([" ", ", ", ".", "-", "'", "’", "_", "é", "“", "\n", "2"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_PIECES, _SEPS), min_size=1, max_size=14), st.integers(0, 3))
def test_both_engines_agree_on_random_text(parts: list[tuple[str, str]], seed: int) -> None:
    text = "".join(a + b for a, b in parts)
    assert _outputs(_compiled, [text], seed) == _outputs(_python, [text], seed)


def test_a_swapper_pickles_under_the_public_module() -> None:
    sw = swapper.Swapper(resolve_lexicons(("gender", "religion")), seed=2)
    blob = pickle.dumps(sw)
    assert b"fairtune.augment.swapper" in blob and b"_engine" not in blob
    back = pickle.loads(blob)
    assert type(back) is swapper.Swapper
    assert back.counterfactual("She is a Muslim.") == sw.counterfactual("She is a Muslim.")


@pytest.mark.parametrize("mode", ["two_sided", "neutralize"])
def test_the_cli_writes_the_same_file_with_either_engine(tmp_path: Path, mode: str) -> None:
    """`fairtune augment` end to end (reading, augmenting, writing) with the compiled and the Python engine."""
    rows = [{"text": t, "label": i % 2} for i, t in enumerate(_TEXTS * 3)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    axes = "gender,names,names_race,religion,nationality" if mode == "two_sided" else "gender,names"
    outs = []
    for no_ext in ("", "1"):
        out = tmp_path / f"out{no_ext}.jsonl"
        env = {**os.environ, "FAIRTUNE_NO_EXTENSIONS": no_ext, "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "fairtune", "augment", "--task", "text", "--input", str(src)]
        cmd += ["--output", str(out), "--axes", axes, "--mode", mode, "--seed", "3", "--no-progress"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    got = [json.loads(line)["text"] for line in outs[0].decode().splitlines()]
    assert len(got) > len(rows) if mode == "two_sided" else len(got) == len(rows)  # two-sided adds changed rows
    assert sum(g not in _TEXTS for g in got) >= 9  # rows were changed, not copied
