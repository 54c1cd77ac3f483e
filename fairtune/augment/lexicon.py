"""Loading and validating the word and name lists that counterfactual augmentation swaps.

Two kinds of lexicon:

- `PairLexicon` (`"kind": "pairs"`): words that swap with one partner (he/she, actor/actress, Mary/James), plus
  one-way entries (a marked form going back to a neutral word: seamstress -> tailor) and context-resolved entries
  (her -> him | his). Built in: `gender`, `names`.
- `GroupLexicon` (`"kind": "groups"`): terms in more than two groups (religions, nationalities, names by
  race/ethnicity); each group has slots (singular/plural, female/male/surname) of ranked terms, and a term maps to
  the term of the same slot and rank in another group. Built in: `religion`, `nationality`, `names_race`.

User files are JSON (the same schema as the built-in files in `fairtune/augment/lexicons/`) or TSV (one
`word<TAB>swap` mapping a line, both directions listed, as in the WinoBias lists; a third column `one_way` marks a
mapping without its reverse; `# axis: NAME` and `# replace: true` comment lines set the axis and whether the file
replaces the built-in list of that axis). Every file is validated; errors name the file, the entry and the fix.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

BUILTIN_AXES: tuple[str, ...] = ("gender", "names", "names_race", "religion", "nationality")
# Person-name axes: restricted to person-typed spans in NER rows; homographs are skipped in free text.
NAME_AXES: frozenset[str] = frozenset({"names", "names_race"})
SURNAME_SLOT = "surname"


@dataclass(frozen=True)
class PairLexicon:
    """Words that swap with one partner; `mapping` keys are lower-cased, values keep their canonical case."""

    axis: str
    mapping: Mapping[str, str]
    group_of: Mapping[str, str] = field(default_factory=dict)
    contextual: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    capitalized_only: bool = False
    homographs: frozenset[str] = frozenset()
    neutral: frozenset[str] = frozenset()
    source: str = "built-in"

    kind = "pairs"

    def bijective_part(self) -> dict[str, str]:
        """The one-to-one part of the mapping: entries whose target maps straight back to them."""
        return {a: b for a, b in self.mapping.items() if self.mapping.get(b.lower(), "").lower() == a}

    def terms(self) -> set[str]:
        """Every lower-cased source term."""
        return set(self.mapping) | set(self.contextual)


@dataclass(frozen=True)
class GroupLexicon:
    """Terms in several groups: `groups[group][slot]` is a ranked tuple; `index[term.lower()] = (group, slot, rank)`."""

    axis: str
    groups: Mapping[str, Mapping[str, tuple[str, ...]]]
    index: Mapping[str, tuple[str, str, int]]
    capitalized_only: bool = True
    homographs: frozenset[str] = frozenset()
    source: str = "built-in"

    kind = "groups"

    def terms(self) -> set[str]:
        """Every lower-cased term."""
        return set(self.index)


Lexicon = PairLexicon | GroupLexicon


def _fail(source: str, where: str, problem: str, fix: str) -> None:
    raise ValueError(f"lexicon {source}: {where}: {problem}. Fix: {fix}")


def _word(source: str, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(source, where, f"expected a non-empty word, got {value!r}", "write every entry as a non-empty string")
    word = " ".join(value.split())
    if not any(ch.isalpha() for ch in word):
        _fail(source, where, f"{word!r} has no letters", "remove the entry")
    return word


def build_pair_lexicon(
    axis: str,
    pairs: Iterable[tuple[str, Any, Any]],
    one_way: Iterable[tuple[str, Any, Any, Any]] = (),
    contextual: Mapping[str, Mapping[str, str]] | None = None,
    *,
    columns: tuple[str, str] | None = None,
    capitalized_only: bool = False,
    homographs: Iterable[str] = (),
    neutral: Iterable[str] = (),
    source: str = "built-in",
) -> PairLexicon:
    """Validate two-way `pairs` (where, a, b) and `one_way` (where, src, tgt, group) entries into a `PairLexicon`."""
    mapping: dict[str, str] = {}
    seen: dict[str, tuple[str, str]] = {}  # lower word -> (where, how it was listed)
    group_of: dict[str, str] = {}
    partner: dict[str, str] = {}
    contextual = {k.lower(): dict(v) for k, v in (contextual or {}).items()}
    for word, roles in contextual.items():
        seen[word] = ("contextual", f"{word!r} (resolved from context)")
        if roles.get("group"):
            group_of[word] = roles["group"]
    for where, a, b in pairs:
        a, b = _word(source, where, a), _word(source, where, b)
        la, lb = a.lower(), b.lower()
        if la == lb:
            _fail(source, where, f"{a!r} is paired with itself", "remove the entry or give it a different partner")
        for w in (la, lb):
            if w in seen:
                prev_where, prev = seen[w]
                if partner.get(w) == {la: lb, lb: la}[w]:
                    problem = f"duplicate pair {a!r} / {b!r} (also at {prev_where})"
                    fix = "list every pair once"
                else:
                    problem = f"{w!r} is in two entries: {a!r} / {b!r} and {prev} at {prev_where}"
                    fix = "keep one of them; a word can map to only one word"
                _fail(source, where, problem, fix)
        mapping[la], mapping[lb] = b, a
        partner[la], partner[lb] = lb, la
        seen[la] = seen[lb] = (where, f"{a!r} / {b!r}")
        if columns:
            group_of[la], group_of[lb] = columns
    for where, a, b, group in one_way:
        a, b = _word(source, where, a), _word(source, where, b)
        la = a.lower()
        if la == b.lower():
            _fail(source, where, f"{a!r} maps to itself", "remove the entry")
        if la in seen:
            prev_where, prev = seen[la]
            _fail(
                source,
                where,
                f"one-way entry {a!r} -> {b!r} clashes with {prev} at {prev_where}",
                "keep one of them; a word can map to only one word",
            )
        mapping[la] = b
        seen[la] = (where, f"{a!r} -> {b!r}")
        if group:
            group_of[la] = str(group)
    one_way_sources = {_word(source, w, a).lower() for w, a, _b, _g in one_way}
    for where, a, b, _group in one_way:
        if b.lower() in one_way_sources:
            _fail(
                source,
                where,
                f"one-way entry {a!r} -> {b!r} leads to another one-way entry ({b!r} -> {mapping[b.lower()]!r})",
                f"map {a!r} straight to the final word",
            )
    neutral_set = frozenset(" ".join(n.lower().split()) for n in neutral)
    for word in sorted(neutral_set & set(mapping)):
        if mapping[word].lower() in one_way_sources or word in one_way_sources:
            continue
        _fail(
            source,
            f"neutral word {word!r}",
            f"it is listed as gender-neutral but would be swapped to {mapping[word]!r}",
            "drop the pair (only the marked form maps back, as a one-way entry) or drop it from `neutral`",
        )
    return PairLexicon(
        axis=axis,
        mapping=mapping,
        group_of=group_of,
        contextual=contextual,
        capitalized_only=capitalized_only,
        homographs=frozenset(h.lower() for h in homographs),
        neutral=neutral_set,
        source=source,
    )


def build_group_lexicon(
    axis: str,
    groups: Mapping[str, Mapping[str, Iterable[str]]],
    *,
    capitalized_only: bool = True,
    homographs: Iterable[str] = (),
    source: str = "built-in",
) -> GroupLexicon:
    """Validate `groups[group][slot] = ranked terms` into a `GroupLexicon` (no term in two places, >= 2 groups)."""
    if not isinstance(groups, Mapping) or len(groups) < 2:
        _fail(
            source,
            "groups",
            "a groups lexicon needs at least two groups",
            'write {"groups": {"a": {...}, "b": {...}}}',
        )
    index: dict[str, tuple[str, str, int]] = {}
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for group, slots in groups.items():
        if not isinstance(slots, Mapping) or not slots:
            _fail(source, f"group {group!r}", "expected slots of term lists", 'write {"singular": ["term", ...]}')
        out[group] = {}
        for slot, terms in slots.items():
            if isinstance(terms, str) or not isinstance(terms, Iterable):
                _fail(source, f"group {group!r} slot {slot!r}", "expected a list of terms", "use a JSON list")
            clean = []
            for rank, term in enumerate(terms):
                where = f"group {group!r} slot {slot!r} entry {rank}"
                term = _word(source, where, term)
                low = term.lower()
                if low in index:
                    g2, s2, r2 = index[low]
                    what = "duplicate term" if g2 == group else "term in two groups"
                    _fail(
                        source,
                        where,
                        f"{what} {term!r} (also group {g2!r} slot {s2!r} entry {r2})",
                        "list every term once, in the group it belongs to",
                    )
                index[low] = (group, slot, rank)
                clean.append(term)
            out[group][slot] = tuple(clean)
    return GroupLexicon(
        axis=axis,
        groups=out,
        index=index,
        capitalized_only=capitalized_only,
        homographs=frozenset(h.lower() for h in homographs),
        source=source,
    )


def _from_json(data: Any, source: str, default_axis: str | None) -> tuple[Lexicon, bool]:
    if not isinstance(data, Mapping):
        _fail(source, "top level", "expected a JSON object", 'write {"axis": ..., "pairs": [[a, b], ...]}')
    axis = data.get("axis") or default_axis
    if not axis:
        _fail(source, "top level", "no axis named", 'add "axis": "gender" (or a new axis name)')
    replace = bool(data.get("replace", False))
    kind = data.get("kind") or ("groups" if "groups" in data and isinstance(data["groups"], Mapping) else "pairs")
    known = {"axis", "kind", "description", "columns", "capitalized_only", "pairs", "one_way", "contextual"}
    known |= {"neutral", "homographs", "groups", "replace"}
    unknown = sorted(set(data) - known)
    if unknown:
        _fail(source, "top level", f"unknown keys {unknown}", f"use only {sorted(known)}")
    capitalized_only = bool(data.get("capitalized_only", kind == "groups"))
    if kind == "groups":
        lex = build_group_lexicon(
            axis,
            data.get("groups", {}),
            capitalized_only=capitalized_only,
            homographs=data.get("homographs", ()),
            source=source,
        )
        return lex, replace
    if kind != "pairs":
        _fail(source, "kind", f"unknown kind {kind!r}", 'use "pairs" or "groups"')
    raw_pairs = data.get("pairs", [])
    blocks = raw_pairs.items() if isinstance(raw_pairs, Mapping) else [("pairs", raw_pairs)]
    pairs = []
    for block, entries in blocks:
        for i, entry in enumerate(entries):
            where = f"{block}[{i}]"
            if not isinstance(entry, list | tuple) or len(entry) != 2:
                _fail(source, where, f"expected a [word, partner] pair, got {entry!r}", "write two words per pair")
            pairs.append((where, entry[0], entry[1]))
    one_way = []
    for i, entry in enumerate(data.get("one_way", [])):
        where = f"one_way[{i}]"
        if not isinstance(entry, list | tuple) or len(entry) not in (2, 3):
            _fail(source, where, f"expected [marked, neutral] or [marked, neutral, group], got {entry!r}", "fix it")
        one_way.append((where, entry[0], entry[1], entry[2] if len(entry) == 3 else None))
    columns = data.get("columns")
    if columns is not None and (not isinstance(columns, list | tuple) or len(columns) != 2):
        _fail(source, "columns", f"expected two group names, got {columns!r}", 'write "columns": ["male", "female"]')
    lex = build_pair_lexicon(
        axis,
        pairs,
        one_way,
        data.get("contextual"),
        columns=tuple(columns) if columns else None,
        capitalized_only=capitalized_only,
        homographs=data.get("homographs", ()),
        neutral=data.get("neutral", ()),
        source=source,
    )
    return lex, replace


def _from_tsv(text: str, source: str, default_axis: str | None) -> tuple[Lexicon, bool]:
    axis, replace = default_axis, False
    directed: dict[str, tuple[int, str, str, bool]] = {}
    order: list[tuple[int, str, str, bool]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, _, value = stripped.lstrip("#").partition(":")
            if key.strip().lower() == "axis" and value.strip():
                axis = value.strip()
            elif key.strip().lower() == "replace":
                replace = value.strip().lower() in ("1", "true", "yes")
            continue
        cols = [c.strip() for c in line.split("\t")]
        where = f"line {lineno}"
        if len(cols) not in (2, 3) or (len(cols) == 3 and cols[2].lower() not in ("one_way", "one-way", "")):
            _fail(source, where, f"expected 'word<TAB>swap' or 'word<TAB>swap<TAB>one_way', got {line!r}", "fix it")
        a, b = _word(source, where, cols[0]), _word(source, where, cols[1])
        one_way = len(cols) == 3 and bool(cols[2])
        la = a.lower()
        if la in directed:
            prev_line, pa, pb, _ = directed[la]
            if pb.lower() == b.lower():
                _fail(source, where, f"duplicate entry {a!r} -> {b!r} (also line {prev_line})", "delete one of them")
            _fail(
                source,
                where,
                f"{a!r} -> {b!r} clashes with line {prev_line}: {pa!r} -> {pb!r}",
                "keep one of them; a word can map to only one word",
            )
        directed[la] = (lineno, a, b, one_way)
        order.append((lineno, a, b, one_way))
    if not axis:
        _fail(source, "header", "no axis named", "add a first line '# axis: gender' (or a new axis name)")
    if not order:
        _fail(source, "file", "no entries", "add lines 'word<TAB>swap'")
    pairs, one_way_entries, done = [], [], set()
    for lineno, a, b, one_way in order:
        la, lb = a.lower(), b.lower()
        if one_way:
            one_way_entries.append((f"line {lineno}", a, b, None))
            continue
        if la in done:
            continue
        back = directed.get(lb)
        if back is None or back[3]:
            _fail(
                source,
                f"line {lineno}",
                f"one-way pair {a!r} -> {b!r}: there is no line {b!r} -> {a!r}",
                f"add the line '{b}\\t{a}', or mark this one '{a}\\t{b}\\tone_way' if only {a!r} should be swapped",
            )
        if back[2].lower() != la:
            _fail(
                source,
                f"line {lineno}",
                f"{a!r} -> {b!r}, but line {back[0]} maps {b!r} -> {back[2]!r}",
                f"make line {back[0]} '{b}\\t{a}' (pairs must map both ways) or mark one of them one_way",
            )
        pairs.append((f"line {lineno}", a, b))
        done |= {la, lb}
    return build_pair_lexicon(axis, pairs, one_way_entries, source=source), replace


def load_lexicon_file(path: str | Path, axis: str | None = None) -> tuple[Lexicon, bool]:
    """Load and validate a user lexicon file (.json or .tsv); returns (lexicon, replace_builtin)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lexicon file {path} does not exist; pass the path of a .json or .tsv lexicon.")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"lexicon {path}: not valid JSON ({err}). Fix the file or use the .tsv format.") from err
        return _from_json(data, str(path), axis)
    if suffix in (".tsv", ".txt"):
        return _from_tsv(text, str(path), axis)
    raise ValueError(f"lexicon {path}: unknown format {suffix!r}. Use a .json or .tsv file.")


@functools.cache
def builtin_lexicon(axis: str) -> Lexicon:
    """The lexicon shipped with fairtune for `axis` (validated once, then cached; immutable)."""
    if axis not in BUILTIN_AXES:
        raise ValueError(f"unknown axis {axis!r}; built-in axes are {list(BUILTIN_AXES)} (or pass a lexicon file).")
    ref = resources.files("fairtune.augment") / "lexicons" / f"{axis}.json"
    lex, _ = _from_json(json.loads(ref.read_text(encoding="utf-8")), f"built-in {axis}.json", axis)
    return lex


def merge_lexicons(base: Lexicon, extra: Lexicon) -> Lexicon:
    """`base` extended by `extra` (same axis and kind); an entry that contradicts `base` is an error."""
    if base.kind != extra.kind:
        raise ValueError(
            f"lexicon {extra.source}: axis {extra.axis!r} is a {base.kind!r} lexicon in fairtune but the file is "
            f"{extra.kind!r}. Fix: use the same kind, or set replace to true to use the file instead."
        )
    if isinstance(base, PairLexicon) and isinstance(extra, PairLexicon):
        mapping = dict(base.mapping)
        for word, target in extra.mapping.items():
            old = mapping.get(word)
            if old is not None and old.lower() != target.lower() or word in base.contextual:
                _fail(
                    extra.source,
                    f"entry {word!r} -> {target!r}",
                    f"the built-in {base.axis} lexicon maps {word!r} -> {old or 'context'!r}",
                    "drop the entry, or set replace to true (JSON \"replace\": true, TSV '# replace: true') "
                    "to use your file instead of the built-in list",
                )
            mapping[word] = target
        return PairLexicon(
            axis=base.axis,
            mapping=mapping,
            group_of={**base.group_of, **extra.group_of},
            contextual=base.contextual,
            capitalized_only=base.capitalized_only,
            homographs=base.homographs | extra.homographs,
            neutral=base.neutral,
            source=f"{base.source}+{extra.source}",
        )
    assert isinstance(base, GroupLexicon) and isinstance(extra, GroupLexicon)
    groups = {g: {s: list(t) for s, t in slots.items()} for g, slots in base.groups.items()}
    for group, slots in extra.groups.items():
        for slot, terms in slots.items():
            for term in terms:
                hit = base.index.get(term.lower())
                if hit and hit[0] != group:
                    _fail(
                        extra.source,
                        f"group {group!r} term {term!r}",
                        f"the built-in {base.axis} lexicon has it in group {hit[0]!r}",
                        "drop the term, or set replace to true to use your file instead of the built-in list",
                    )
                if not hit:
                    groups.setdefault(group, {}).setdefault(slot, []).append(term)
    return build_group_lexicon(
        base.axis,
        groups,
        capitalized_only=base.capitalized_only,
        homographs=base.homographs | extra.homographs,
        source=f"{base.source}+{extra.source}",
    )


def resolve_lexicons(axes: Iterable[str], files: Iterable[str | Path] = ()) -> list[Lexicon]:
    """The lexicons for `axes` plus user `files` (a file's axis is added to the axes when not already there)."""
    axes = list(dict.fromkeys(a.strip() for a in axes if a and a.strip()))
    user: dict[str, tuple[Lexicon, bool]] = {}
    for f in files:
        lex, replace = load_lexicon_file(f)
        if lex.axis in user:
            prev, prev_replace = user[lex.axis]
            lex = merge_lexicons(prev, lex)
            replace = replace or prev_replace
        user[lex.axis] = (lex, replace)
        if lex.axis not in axes:
            axes.append(lex.axis)
    if not axes:
        raise ValueError("no axes given; choose from " + ", ".join(BUILTIN_AXES) + " or pass a lexicon file.")
    out: list[Lexicon] = []
    for axis in axes:
        if axis in user:
            lex, replace = user[axis]
            out.append(lex if replace or axis not in BUILTIN_AXES else merge_lexicons(builtin_lexicon(axis), lex))
        else:
            out.append(builtin_lexicon(axis))
    return out
