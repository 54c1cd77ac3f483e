"""Equivalences the fast all-axes path relies on, each checked against the straightforward form it replaces."""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairtune.augment.lexicon import resolve_lexicons
from fairtune.augment.swapper import (
    _ONE_WORD,
    ExampleState,
    Swapper,
    _is_name_homograph,
    _normalize,
    _shuffle,
    example_key,
)
from fairtune.augment.swapper import engine as swapper_module  # the module in use (compiled or Python)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _swapper_v0 import ExampleState as SwapperV0ExampleState  # noqa: E402

_ALL = ("gender", "names", "names_race", "religion", "nationality")
_WORD = re.compile(r"\w+")
_TEXTS = [
    "He’s İstanbul's HE hE Mr. Brown, mr, MR. and Mary-Kate; ſhe K and the theme",
    "Théo and he, hé, heé, “she” said: Mary Smith met John Garcia; later Garcia left.",
    "A Muslim and an Atheist; American men, Chinese women: his father-in-law, Mrs. Jones.",
    "May, Will and Paris met June. mary, WILL, MARY! O'Brien and Ann-Marie.",
    "_he he_ 2he he2 he-she she/he (her) [his] {him} «she» ‘he’",
    "In Sri Lanka a Sri Lankan Hindu, an In and an An met Kim Lee in Seoul; the fiancée of Zoë Smith é-Smith.",
    "The French and the Chinese. Khan, Luther and William Long met a Buddhist monk in the Church of England.",
    "",
]
_PIECES = st.sampled_from(
    [
        "he", "She", "HIS", "her", "Muslim", "Hindu", "Jewish", "American", "french", "Chinese", "Sri Lankan",
        "Mary", "John", "Smith", "Garcia", "Kim", "Lee", "In", "an", "May", "Will", "the", "café", "Zoë", "fiancée",
        "Mr.", "mrs", "O'Brien", "x",
    ]
)  # fmt: skip
_SEPS = st.sampled_from([" ", ", ", ".", "-", "'", "’", "_", "é", "“", " – ", "\n", "ß", "2"])


@st.composite
def _sentence(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 12))):
        parts += [draw(_PIECES), draw(_SEPS)]
    return "".join(parts)


@pytest.fixture(scope="module")
def swappers() -> tuple[Swapper, Swapper]:
    lex = resolve_lexicons(_ALL)
    return Swapper(lex, seed=3), Swapper(lex, seed=3, matcher="regex")


@pytest.fixture(scope="module")
def reference_automata(swappers):
    """The terms-only automata (value: word length) the engine used before the vocabulary joined them."""
    ahocorasick = pytest.importorskip("ahocorasick")
    full, free = ahocorasick.Automaton(), ahocorasick.Automaton()
    for word, entry in swappers[0]._table.items():
        full.add_word(_normalize(word), len(word))
        if not (_is_name_homograph(entry) and _ONE_WORD.fullmatch(word)):
            free.add_word(_normalize(word), len(word))
    full.make_automaton()
    free.make_automaton()
    return full, free


def _reference_spans(automaton, table, low: str) -> list[tuple[int, int]]:
    """The previous `Swapper._spans` loop (leftmost, then longest, non-overlapping)."""
    exact, cands = low.isascii(), []
    for j, n in automaton.iter(_normalize(low)):
        s, e = j - n - 1, j - 1
        if low[s:e] not in table:
            continue
        if not exact:
            before, after = low[s - 1 : s] or " ", low[e : e + 1] or " "
            if before.isalnum() or before == "_" or after.isalnum() or after == "_":
                continue
        cands.append((s, -e))
    out, pos = [], 0
    for s, ne in sorted(cands):
        if s >= pos:
            out.append((s, -ne))
            pos = -ne
    return out


def _check_pass(sw: Swapper, rx: Swapper, automata, text: str) -> None:
    """The one automaton pass gives the previous spans and the vocabulary words `ExampleState.words()` uses."""
    low = text.lower()
    assert sw._match(text, False)[0] == rx._spans(text, False)
    for free, automaton in zip((False, True), automata):
        spans, found = sw._match(text, free)
        if found is None:
            assert len(low) != len(text)
            continue
        assert spans == _reference_spans(automaton, sw._table, low)
        assert set(found) == sw._c._find_vocab(text)
        assert set(found) == {w for w in _WORD.findall(low)} & sw._c.vocab_words


@pytest.mark.parametrize("text", _TEXTS)
def test_one_pass_finds_the_spans_and_the_vocabulary(swappers, reference_automata, text: str) -> None:
    _check_pass(*swappers, reference_automata, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_sentence())
def test_one_pass_on_random_text(swappers, reference_automata, text: str) -> None:
    _check_pass(*swappers, reference_automata, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_sentence(), min_size=1, max_size=3))
def test_lazy_state_gives_the_eager_states_output(swappers, texts: list[str]) -> None:
    """`swap(text)` without a state (built only at a group term, words from the pass) equals the eager path."""
    sw = swappers[0]
    for text in texts:
        eager = sw.swap(text, state=sw.new_state([text]))
        assert sw.swap(text) == eager
        assert sw.counterfactual(text) == eager.text
        assert sw.swap_fields([text])[0] == eager
    # several fields: their state's words come from every field (not from one pass), as before
    fresh = sw.new_state(texts)
    fresh.words()
    assert sw.swap_fields(texts) == [sw.swap(t, state=fresh) for t in texts]


def _reference_permutation(seed: int, axis: str, key: str, groups: list[str], present: set[str]) -> dict[str, str]:
    """`ExampleState.permutation` of the frozen previous engine (`bench/_swapper_v0.py`: `random.shuffle`, lists)."""
    return SwapperV0ExampleState(key=key, seed=seed).permutation(axis, list(groups), present)


@pytest.fixture(params=["c", "python"])
def derangement_path(request, monkeypatch):
    """Run a test with the C derangement (skipped where it was not built) and with the pure-Python loop."""
    if request.param == "c":
        pytest.importorskip("fairtune.augment._speedups")
        assert swapper_module._c_derangement is not None
    else:
        monkeypatch.setattr(swapper_module, "_c_derangement", None)
    return request.param


@pytest.mark.parametrize("n", [2, 3, 4, 10, 68])
def test_permutation_equals_the_reference(n: int, derangement_path: str) -> None:
    groups = [f"g{i}" for i in range(n)]
    rng = random.Random(n)
    for i in range(400):
        key = f"{rng.getrandbits(32):08x}"
        present = set(rng.sample(groups, rng.randint(0, n))) | ({"not-a-group"} if i % 7 == 0 else set())
        state = ExampleState(key=key, seed=i % 3)
        assert state.permutation("ax", tuple(groups), present) == _reference_permutation(
            i % 3, "ax", key, groups, present
        )


def test_c_derangement_is_the_random_module_loop() -> None:
    """The C module seeds and draws exactly as `random.Random(str)` + `shuffle` until no fixed point."""
    derange = pytest.importorskip("fairtune.augment._speedups").derangement
    rng = random.Random(0)
    for n in (2, 3, 5, 17, 68, 300):
        for _ in range(200):
            seed = f"{rng.randint(0, 9)}|{rng.choice(['religion', 'nationality', 'names_race'])}|{rng.getrandbits(32):08x}"
            ref, order = random.Random(seed), list(range(n))
            target = order[:]
            while True:
                ref.shuffle(target)
                if all(a != b for a, b in zip(order, target)):
                    break
            raw = seed.encode()
            assert derange((raw + hashlib.sha512(raw).digest())[::-1], n) == target
    with pytest.raises(ValueError, match="n must be"):
        derange(b"\x01", 1)


def test_corpus_output_is_the_same_without_the_c_module(monkeypatch) -> None:
    """Every text of a mixed sample gives the same output with the C accelerators and with their Python twins."""
    pytest.importorskip("fairtune.augment._speedups")
    sw = Swapper(resolve_lexicons(_ALL), seed=5)
    texts = _TEXTS + [t.replace("Muslim", "Kenyan").replace("Chinese", "Swedish") for t in _TEXTS]
    with_c = [sw.swap_fields([t, t.upper()]) for t in texts]
    hits_c = [sw._match(t, free) for t in texts for free in (True, False)]
    monkeypatch.setattr(swapper_module, "_c_derangement", None)
    assert [sw.swap_fields([t, t.upper()]) for t in texts] == with_c
    monkeypatch.setattr(swapper_module, "_c_split_matches", None)
    assert [sw.swap_fields([t, t.upper()]) for t in texts] == with_c
    assert [sw._match(t, free) for t in texts for free in (True, False)] == hits_c


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_sentence())
def test_c_accelerators_change_no_output_on_random_text(swappers, text: str) -> None:
    """Random text (odd case, non-ASCII letters next to terms, possessives): the same swaps without the C module."""
    pytest.importorskip("fairtune.augment._speedups")
    sw = swappers[0]
    got = (sw.swap(text), sw.counterfactual(text), sw.swap(text.title()), sw.swap(text.upper()))
    saved = {k: getattr(swapper_module, k) for k in ("_c_derangement", "_c_split_matches")}
    try:
        for k in saved:
            setattr(swapper_module, k, None)
        assert (sw.swap(text), sw.counterfactual(text), sw.swap(text.title()), sw.swap(text.upper())) == got
    finally:
        for k, v in saved.items():
            setattr(swapper_module, k, v)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_sentence())
def test_split_matches_in_c_is_the_python_branch(swappers, text: str) -> None:
    """`split_matches` gives the two comprehensions it replaces, and None when a key of several words matched."""
    split = pytest.importorskip("fairtune.augment._speedups").split_matches
    sw = swappers[0]
    for automaton in (sw._c.automaton, sw._c.automaton_free):
        norm = (" " + text.lower() + " ").encode("ascii", "replace").translate(swapper_module._NORM)
        ms = automaton.find(norm)
        got = split(ms, automaton.entry, automaton.vocab, automaton.n_pure)
        if ms and max(ms)[0] >= automaton.n_pure:
            assert got is None
            continue
        hits = [(s, e - 2, automaton.entry[pi]) for pi, s, e in ms if automaton.entry[pi] is not None]
        words = [automaton.vocab[pi] for pi, _s, _e in ms if automaton.vocab[pi] is not None]
        assert got == (hits, words)


def test_split_matches_refuses_bad_input() -> None:
    split = pytest.importorskip("fairtune.augment._speedups").split_matches
    assert split([], [], [], 0) == ([], [])
    assert split([(0, 1, 5)], [("entry",)], ["word"], 1) == ([(1, 3, ("entry",))], ["word"])
    assert split([(0, 1, 5)], [("entry",)], ["word"], 0) is None  # not a one-word key
    with pytest.raises(IndexError, match="out of range"):
        split([(3, 1, 5)], [None], [None], 1)
    with pytest.raises(TypeError, match="not a"):
        split([(0, 1)], [None], [None], 1)


def test_permutation_key_is_the_example_key() -> None:
    texts = ("A Muslim met a Hindu.", "Who met whom?")
    state = ExampleState(key="", seed=0, texts=texts)
    groups = ["a", "b", "c", "d"]
    assert state.permutation("religion", groups, {"a"}) == _reference_permutation(
        0, "religion", example_key(texts), groups, {"a"}
    )


def test_inline_shuffle_matches_random_shuffle_on_group_sizes() -> None:
    for n in (4, 10, 68):
        for seed in range(200):
            a, b = list(range(n)), list(range(n))
            r1, r2 = random.Random(f"0|x|{seed:08x}"), random.Random(f"0|x|{seed:08x}")
            r1.shuffle(a)
            _shuffle(r2, b)
            assert a == b


def test_no_extensions_env_runs_no_compiled_code() -> None:
    """`FAIRTUNE_NO_EXTENSIONS=1` runs what an install without a C compiler runs: the Python engine, no C helpers."""
    code = (
        "from fairtune.augment import swapper as s; "
        "print(s.engine.__name__, s.engine._c_derangement, s.engine._c_split_matches, s.engine_reason)"
    )
    env = {**os.environ, "FAIRTUNE_NO_EXTENSIONS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["fairtune.augment._engine", "None", "None", "FAIRTUNE_NO_EXTENSIONS", "is", "set"]
