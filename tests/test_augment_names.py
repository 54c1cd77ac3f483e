"""Name swaps keep a name's other attributes: a gender swap pairs names within one race/ethnicity."""

from __future__ import annotations

import json
from importlib import resources

from fairtune.augment import CounterfactualAugmenter, builtin_lexicon

RACE = builtin_lexicon("names_race")


def _race(name: str) -> str | None:
    hit = RACE.index.get(name.lower())
    return hit[0] if hit and hit[1] in ("female", "male") else None


def _blocks() -> dict[str, list[list[str]]]:
    ref = resources.files("fairtune.augment") / "lexicons" / "names.json"
    return json.loads(ref.read_text(encoding="utf-8"))["pairs"]


def test_every_gender_pair_keeps_the_race_of_the_name() -> None:
    names = builtin_lexicon("names")
    assert len(names.mapping) >= 2000
    for word, target in names.mapping.items():
        assert _race(word) == _race(target), (word, target, _race(word), _race(target))
        assert names.group_of[word] != names.group_of[target.lower()]  # and the gender does change
    # every race/ethnicity of names_race has pairs of its own, and a block holds one ethnicity only
    blocks = _blocks()
    for eth in ("white", "black", "hispanic", "asian"):
        assert len(blocks[eth]) >= 5
        for male, female in blocks[eth] + blocks.get(eth + "_homographs", []):
            assert _race(male) == eth == _race(female)
        for male, female in blocks[eth + "_nyc"] + blocks.get(eth + "_nyc_homographs", []):
            assert _race(male) is None and _race(female) is None  # placed by NYC birth ethnicity, apart


def test_gender_swap_in_text_leaves_race_unchanged_and_names_race_changes_it() -> None:
    blocks = _blocks()
    sample = [p for eth in ("white", "black", "hispanic", "asian") for p in blocks[eth][:5]]
    text = ". ".join(f"{m} met {f}" for m, f in sample) + "."
    gender = CounterfactualAugmenter(axes=("gender", "names")).swap(text)
    assert len(gender.edits) == 2 * len(sample)
    for ed in gender.edits:
        assert _race(ed.old) == _race(ed.new) and ed.old != ed.new
    by_race = CounterfactualAugmenter(axes=("names_race",), seed=1).swap(text)
    raced = [ed for ed in by_race.edits if _race(ed.old)]
    assert raced and all(_race(ed.old) != _race(ed.new) for ed in raced)
    for ed in raced:  # names_race keeps the gender slot
        assert RACE.index[ed.old.lower()][1] == RACE.index[ed.new.lower()][1]


def test_no_first_name_is_a_gendered_word() -> None:
    """Beau/Belle, King/Queen are gender words; as names they would chain (Susanne -> Beau -> Belle)."""
    assert not set(builtin_lexicon("names").mapping) & builtin_lexicon("gender").terms()
    aug = CounterfactualAugmenter(axes=("gender", "names"))
    for word, target in builtin_lexicon("names").bijective_part().items():
        if word not in builtin_lexicon("names").homographs:
            text = f"{target} met."
            assert aug.counterfactual(aug.counterfactual(text)) == text
