"""The swapping engine and its lexicons: curated cases, properties, validation errors."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairtune.augment import CounterfactualAugmenter, builtin_lexicon, group_from_lexicon, load_lexicon_file
from fairtune.augment.lexicon import BUILTIN_AXES

GENDER = CounterfactualAugmenter(axes=("gender",), seed=0)
NAMES = CounterfactualAugmenter(axes=("gender", "names"), seed=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("he praised his sister", "she praised her brother"),
        ("He said HE was the KING.", "She said SHE was the QUEEN."),
        ("Her mother's car", "His father's car"),
        ("He's late and he'd know; she’s sure.", "She's late and she'd know; he’s sure."),
        ("I gave her the book.", "I gave him the book."),
        ("I took her book.", "I took his book."),
        ("I saw her.", "I saw him."),
        ("The book is his.", "The book is hers."),
        ("That car is his, not hers.", "That car is hers, not his."),
        ("his own car", "her own car"),
        ("Tell her to leave and let her go", "Tell him to leave and let him go"),
        ('"Her" dog, (his) cat [him]', '"His" dog, (her) cat [her]'),
        ("The actress and the waiters", "The actor and the waitresses"),
        ("The seamstress met the hostess.", "The tailor met the host."),
        ("Mr. Brown and Mrs. Brown", "Mrs. Brown and Mr. Brown"),
        ("the fiancée", "the fiancé"),
        ("MY FATHER-IN-LAW", "MY MOTHER-IN-LAW"),
    ],
)
def test_curated_gender_cases(text: str, expected: str) -> None:
    assert GENDER.counterfactual(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the theme of the thesis",
        "The shepherd, the tailor, the host and the manager manage the chairs.",
        "Hermione and Shelly hemmed the sheet; Heather hesitated.",
        "Other themes: ethernet, hershey, hisses, manage, mantle, woman-like? no: womanly is a word.",
    ],
)
def test_words_containing_gendered_words_are_untouched(text: str) -> None:
    out = GENDER.counterfactual(text)
    for word in ("the", "theme", "thesis", "shepherd", "tailor", "host", "manager", "manage", "Hermione", "Shelly"):
        if word in text:
            assert word in out
    if "womanly" in text:
        assert "manly" in out and "Other themes" in out


def test_neutral_occupations_are_not_marked() -> None:
    lex = builtin_lexicon("gender")
    for word in ("tailor", "host", "manager", "shepherd", "poet", "author"):
        assert word not in lex.mapping, word
    assert lex.mapping["seamstress"] == "tailor" and lex.mapping["hostess"] == "host"


def test_edits_have_exact_offsets() -> None:
    text = "“He” said: his mother's dog bit her."
    res = GENDER.swap(text)
    assert res.text == "“She” said: her father's dog bit him."
    for ed in res.edits:
        assert text[ed.src_start : ed.src_end] == ed.old
        assert res.text[ed.tgt_start : ed.tgt_end] == ed.new
    rebuilt, last = [], 0
    for ed in res.edits:
        rebuilt += [text[last : ed.src_start], ed.new]
        last = ed.src_end
    assert "".join(rebuilt) + text[last:] == res.text
    assert GENDER.counterfactual(text) == res.text


def test_unicode_word_boundaries() -> None:
    assert GENDER.counterfactual("Théo and he, hé, heé") == "Théo and she, hé, heé"
    assert GENDER.counterfactual("ÉLÈVE: HE, père") == "ÉLÈVE: SHE, père"
    # Odd case-folding characters never crash and never produce a wrong word.
    assert GENDER.counterfactual("K and ſhe") in ("K and ſhe", "K and she")


def test_names_consistent_and_homographs_kept() -> None:
    text = "Mary met John. Later Mary thanked John and Mary's sister."
    out = NAMES.counterfactual(text)
    assert out == "James met Patricia. Later James thanked Patricia and James's brother."
    for word in ("May", "Paris", "Jordan", "Virginia", "Will", "Grace"):
        assert NAMES.counterfactual(f"{word} said it.").startswith(word)
    assert NAMES.counterfactual("mary had a lamb") == "mary had a lamb"  # proper nouns only when capitalized


def test_names_race_first_and_last_names_move_together() -> None:
    aug = CounterfactualAugmenter(axes=("names_race",), seed=3)
    text = "Mary Smith met John Garcia. Later Garcia and Smith left; Mary stayed."
    res = aug.swap(text)
    new = {ed.old: ed.new for ed in res.edits}
    assert set(new) == {"Mary", "Smith", "John", "Garcia"}
    assert len(set(new.values())) == 4 and not set(new.values()) & set(new)  # injective, no source name reused
    for ed in res.edits:
        assert new[ed.old] == ed.new  # the same name always gets the same replacement
    assert (
        aug.counterfactual(text) == res.text == CounterfactualAugmenter(axes=("names_race",), seed=3).swap(text).text
    )


def test_seed_changes_group_choice_deterministically() -> None:
    text = "A Muslim and a Hindu met a Catholic and a Sikh."
    outs = {CounterfactualAugmenter(axes=("religion",), seed=s).counterfactual(text) for s in range(6)}
    assert len(outs) > 1
    aug = CounterfactualAugmenter(axes=("religion",), seed=1)
    assert aug.counterfactual(text) == aug.counterfactual(text)
    out = aug.counterfactual(text)
    for word in ("Muslim", "Hindu", "Catholic", "Sikh"):
        assert word not in out.split()  # a derangement: no group maps to itself
    assert " a A" not in out and not any(f" a {v}" in out for v in ("Atheist", "Orthodox"))


def test_group_from_lexicon() -> None:
    assert group_from_lexicon("She told her mother.") == "female"
    assert group_from_lexicon("John said he would come.") == "male"
    assert group_from_lexicon("He met his sister.") == "both"
    assert group_from_lexicon("The manager met the tailor in May.") == "none"
    assert group_from_lexicon("A Muslim family", axis="religion") == "muslim"


def test_augmenter_is_picklable() -> None:
    aug = pickle.loads(pickle.dumps(NAMES))
    assert aug.counterfactual("He met Mary.") == NAMES.counterfactual("He met Mary.")


def test_builtin_lexicons_are_valid_and_big_enough() -> None:
    lex = builtin_lexicon("gender")
    pairs = {tuple(sorted((a, b.lower()))) for a, b in lex.bijective_part().items()}
    assert len(pairs) >= 150
    for axis in BUILTIN_AXES:
        assert builtin_lexicon(axis).terms()
    names = builtin_lexicon("names")
    assert names.mapping["mary"] == "James" and names.mapping["james"] == "Mary"
    assert {"may", "virginia", "june", "will"} <= names.homographs


# -- properties -------------------------------------------------------------------------------------------------
_BIJ = sorted(w for w in builtin_lexicon("gender").bijective_part() if w not in ("her", "his", "him", "hers"))
_FILLER = ["the", "a", "table", "went", "quickly", "blue", "manager", "tailor", "shepherd", "theme", "Hermione"]
_NAMES = sorted(
    n
    for n in builtin_lexicon("names").bijective_part()
    if n not in builtin_lexicon("names").homographs and n not in builtin_lexicon("gender").mapping
)
_word = st.one_of(st.sampled_from(_BIJ), st.sampled_from(_FILLER))
_case = st.sampled_from([str.lower, str.title, str.upper])
_sep = st.sampled_from([" ", ", ", ". ", "; ", " (", ") ", ' "', '" ', "'s ", " - "])


@st.composite
def _sentence(draw: st.DrawFn, words: st.SearchStrategy[str]) -> str:
    n = draw(st.integers(1, 12))
    parts = []
    for _ in range(n):
        w = draw(words)
        parts.append(draw(_case)(w) if w not in _FILLER else w)
        parts.append(draw(_sep))
    return "".join(parts)


@settings(max_examples=200, deadline=None)
@given(_sentence(_word))
def test_swap_twice_is_identity_on_one_to_one_part(text: str) -> None:
    once = GENDER.counterfactual(text)
    assert GENDER.counterfactual(once) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(_NAMES).map(str.title), min_size=1, max_size=6))
def test_names_swap_twice_is_identity(names: list[str]) -> None:
    text = " and ".join(names) + " met."
    assert NAMES.counterfactual(NAMES.counterfactual(text)) == text


# -- lexicon validation -----------------------------------------------------------------------------------------
def _write(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def test_tsv_lexicon_loads_both_directions(tmp_path) -> None:
    path = _write(tmp_path, "mine.tsv", "# axis: mine\nfoo\tbar\nbar\tfoo\nbazzy\tbar\tone_way\n")
    lex, replace = load_lexicon_file(path)
    assert lex.axis == "mine" and not replace
    aug = CounterfactualAugmenter(axes=("gender",), lexicons=[path])
    assert aug.counterfactual("Foo, bar, BAZZY, he") == "Bar, foo, BAR, she"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("# axis: x\nfoo\tbar\nbar\tfoo\nfoo\tbar\n", "duplicate entry"),
        ("# axis: x\nfoo\tbar\n", "one-way pair 'foo' -> 'bar'"),
        ("# axis: x\nfoo\tbar\nbar\tfoo\nfoo\tqux\n", "clashes with line 2"),
        ("# axis: x\nfoo\tbar\nbar\tqux\nqux\tbar\n", "line 3 maps 'bar' -> 'qux'"),
        ("foo\tbar\nbar\tfoo\n", "no axis named"),
        ("# axis: x\nfoo bar\n", "expected 'word<TAB>swap'"),
    ],
)
def test_tsv_lexicon_errors(tmp_path, content: str, needle: str) -> None:
    path = _write(tmp_path, "bad.tsv", content)
    with pytest.raises(ValueError, match="Fix:") as err:
        load_lexicon_file(path)
    assert needle in str(err.value) and "bad.tsv" in str(err.value)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"axis": "x", "pairs": [["a1", "b1"], ["a1", "b1"]]}, "duplicate pair"),
        ({"axis": "x", "pairs": [["a1", "b1"], ["b1", "a1"]]}, "duplicate pair"),
        ({"axis": "x", "pairs": [["a1", "b1"], ["a1", "c1"]]}, "is in two entries"),
        ({"axis": "x", "pairs": [["a1", "a1"]]}, "paired with itself"),
        ({"axis": "x", "pairs": [["a1", "b1"]], "one_way": [["a1", "c1"]]}, "clashes with"),
        ({"axis": "x", "pairs": [], "one_way": [["a1", "b1"], ["b1", "c1"]]}, "leads to another one-way entry"),
        ({"axis": "x", "pairs": [["tailor", "seamstress"]], "neutral": ["tailor"]}, "listed as gender-neutral"),
        ({"axis": "x", "kind": "groups", "groups": {"g": {"s": ["A1"]}, "h": {"s": ["a1"]}}}, "term in two groups"),
        ({"axis": "x", "pairs": [["a1", "b1"]], "colour": 1}, "unknown keys"),
        ({"axis": "gender", "pairs": [["he", "it"]]}, "built-in gender lexicon maps 'he'"),
    ],
)
def test_json_lexicon_errors(tmp_path, data: dict, needle: str) -> None:
    path = _write(tmp_path, "bad.json", data)
    with pytest.raises(ValueError, match="Fix:") as err:
        CounterfactualAugmenter(axes=("gender",), lexicons=[path])
    assert needle in str(err.value) and "bad.json" in str(err.value)


def test_json_lexicon_replace_and_unknown_axis(tmp_path) -> None:
    path = _write(tmp_path, "g.json", {"axis": "gender", "replace": True, "pairs": [["he", "it"]]})
    aug = CounterfactualAugmenter(axes=("gender",), lexicons=[path])
    assert aug.counterfactual("he and she") == "it and she"
    with pytest.raises(ValueError, match="unknown axis 'race'"):
        CounterfactualAugmenter(axes=("race",))


# -- one matching pass: the Aho-Corasick matcher gives exactly what the trie regex gives -------------------------
_ALL = ("gender", "names", "names_race", "religion", "nationality")
_ODD = [
    "He’s İstanbul's HE hE Mr. Brown, mr, MR. and Mary-Kate; ſhe K and the theme",
    "Théo and he, hé, heé, “she” said: Mary Smith met John Garcia; later Garcia left.",
    "A Muslim and an Atheist; American men, Chinese women: his father-in-law, Mrs. Jones.",
    "May, Will and Paris met June. mary, WILL, MARY! O'Brien and Ann-Marie.",
    "_he he_ 2he he2 he-she she/he (her) [his] {him} «she» ‘he’",
]
_WORDS = st.sampled_from(
    sorted({*_BIJ[:60], *_NAMES[:60], "Muslim", "Hindu", "American", "May", "Will", "Mary-Kate", "Smith", "Garcia"})
    + _FILLER
)
_ODD_SEP = st.sampled_from([" ", ", ", ".", "-", "'", "’", "_", "é", "“", " – ", "İ", "\n"])


@st.composite
def _odd_sentence(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 10))):
        parts += [draw(_case)(draw(_WORDS)), draw(_ODD_SEP)]
    return "".join(parts)


@pytest.mark.parametrize("text", _ODD)
@pytest.mark.parametrize("axes", [("gender",), ("gender", "names"), _ALL])
def test_automaton_matches_the_regex_exactly(text: str, axes) -> None:
    from fairtune.augment.lexicon import resolve_lexicons
    from fairtune.augment.swapper import Swapper

    lex = resolve_lexicons(axes)
    auto, rx = Swapper(lex, seed=2), Swapper(lex, seed=2, matcher="regex")
    assert auto._automaton is not None and rx._automaton is None
    assert auto.swap(text) == rx.swap(text)
    spans = [(0, len(text))]
    assert auto.swap(text, name_spans=spans) == rx.swap(text, name_spans=spans)  # homographs inside person spans


@pytest.fixture(scope="module")
def _both_matchers():
    from fairtune.augment.lexicon import resolve_lexicons
    from fairtune.augment.swapper import Swapper

    lex = resolve_lexicons(_ALL)
    return Swapper(lex, seed=1), Swapper(lex, seed=1, matcher="regex")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_odd_sentence())
def test_automaton_matches_the_regex_on_random_text(_both_matchers, text: str) -> None:
    auto, rx = _both_matchers
    assert auto.swap(text) == rx.swap(text)


def test_inline_shuffle_draws_what_random_shuffle_draws() -> None:
    import random

    from fairtune.augment.swapper import _shuffle

    for seed in range(300):
        for n in (1, 2, 3, 5, 10, 68, 130):
            a, b = list(range(n)), list(range(n))
            r1, r2 = random.Random(f"{seed}|x"), random.Random(f"{seed}|x")
            for _ in range(3):  # successive shuffles on one generator, as the derangement loop does
                r1.shuffle(a)
                _shuffle(r2, b)
                assert a == b
            assert r1.random() == r2.random()
