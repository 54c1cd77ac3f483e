r"""The span-aware swapping engine: text -> (counterfactual text, character-offset edits).

One matching pass for every axis: all lexicon terms of all enabled axes are compiled once into one Aho-Corasick
automaton (ahocorasick-rs, a DFA over bytes) over a boundary-normalised, lower-cased copy of the text (every character
that is not a word character becomes a space, so a term matches only as a whole word), so Python runs only on the
few words that may swap, never per token. The matches are the same as the regular expression
`(?<!\w)(?:term|...)(?!\w)` over the lower-cased text gives (leftmost, then longest); that trie regex is kept as
the fallback (no ahocorasick-rs, or a text whose lower-casing changes its length). The compiled matcher is cached per process by the lexicons' content, and a
pickled `Swapper` carries only that key and its lexicons as one bytes blob, so `datasets.map(num_proc=N)` workers
build it at most once each (with fork, never: they inherit the parent's cache).
The same pass also reports the example's vocabulary (the one-word group-lexicon terms in it, which decide the groups
mentioned and the names already used), so a text never takes a second pass; the per-example state is built only
at the first group term.
Each match is checked (capitalization for proper nouns, homographs, person spans), resolved (her -> him | his and
his -> her | hers from the following and preceding words), given the source's case (lower, Title, UPPER) and
recorded as an `Edit` with source and target offsets. Possessives and contractions keep their suffix (mother's ->
father's, he'd -> she'd) because the suffix is outside the matched word; punctuation and quotes are never touched.

Names and identity terms are kept consistent within one example (every field of a QA row shares one
`ExampleState`): the same name always gets the same replacement, a surname after a swapped first name moves with
it and its later bare mentions follow. Multi-group axes (religion, nationality, names_race) pick a derangement of
their groups per example from `seed` and the example's text, so the output is deterministic for a seed; the optional
C module `_speedups` draws it exactly as the `random` module would, faster.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os
import pickle
import random
import re
import unicodedata
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from hashlib import sha512 as _sha512

from fairtune.augment.lexicon import NAME_AXES, SURNAME_SLOT, GroupLexicon, Lexicon, PairLexicon

# ---------------------------------------------------------------------------------------------------------------
# English context rules for her -> him | his and his -> her | hers.
# ---------------------------------------------------------------------------------------------------------------
_DETERMINERS = (
    "a an the this that these those some any every each no all both either neither another such what which whose"
)
_PREPOSITIONS = (
    "to for about in into on onto at by with without from of off out up down over under through across after before "
    "around during since until till toward towards against among between behind beyond near like unlike despite "
    "upon within via along past per than as"
)
_CONJUNCTIONS = (
    "and or but nor so yet because if when whenever while where wherever why how whether though although unless once"
)
_PRONOUNS = (
    "i you he she it we they me him us them myself yourself himself herself itself ourselves themselves something "
    "anything everything nothing someone anyone everyone somebody anybody everybody nobody who whom"
)
_AUXILIARIES = (
    "is was are were be been being am has have had do does did will would shall should can could may might must"
)
_PARTICLES = (
    "not never again away back down up out off over too also well instead anywhere everywhere somewhere nowhere there "
    "here then now today tomorrow tonight yesterday already still just even ever always often sometimes soon later "
    "alone together indeed enough twice please less more home"
)
# A word after "her" that starts a new constituent: "her" is then the object (him).
_OBJECT_NEXT = frozenset(
    " ".join([_DETERMINERS, _PREPOSITIONS, _CONJUNCTIONS, _PRONOUNS, _AUXILIARIES, _PARTICLES]).split()
)
# Words that may follow a possessive "his"/"her" although they are in _OBJECT_NEXT ("his own", "her first").
_NP_START = frozenset("own very most least many few much other only first last next best".split())
# After "his", these mean "his" stands alone (hers): "the book is his", "a friend of his in Rome".
_INDEPENDENT_NEXT = _OBJECT_NEXT - _NP_START - frozenset(_DETERMINERS.split()) - {"that", "more", "less", "home"}
_PREPOSITION_SET = frozenset(_PREPOSITIONS.split()) - {"as", "than", "like", "up", "down", "out", "off", "over"}
# Base-form verbs that follow an object ("let her go", "helped her settle"), rarely nouns after a possessive.
_BASE_VERBS = frozenset(
    "be go come leave stay feel know think do get make take see hear cry win lose speak talk sing sleep eat understand "
    "believe remember forget decide wait stop try want need become seem pay buy sell finish start begin continue enjoy "
    "settle find keep carry bring use sit stand fall die live choose learn read write drive fly ask tell say give show "
    "meet join marry open close listen relax sign explain apply attend prepare receive recover succeed fail improve "
    "grow laugh".split()
)
# -ly words that are adjectives or nouns, not adverbs ("her family", "his only son").
_LY_NOT_ADVERB = frozenset(
    "family only early lovely ugly friendly elderly daily weekly monthly yearly holy silly jolly belly bully lily ally "
    "rally fly july italy reply supply assembly lonely curly costly deadly orderly timely worldly lively chilly jelly "
    "homely comely ghostly burly surly wily oily woolly smelly hilly bodily likely unlikely heavenly beastly".split()
)
# Adjectives used as predicates after an object ("keep her safe", "treated her bad").
_PREDICATE_ADJ = frozenset(
    "happy sad safe bad good sick ill angry upset mad crazy alive dead free busy calm quiet comfortable warm cold "
    "wrong right late".split()
)
# Verbs taking two objects: "gave her advice" (him) unless the noun phrase is followed by "to"/"for".
_DITRANSITIVE = frozenset(
    "give gives gave given giving hand hands handed handing tell tells told telling offer offers offered offering "
    "send sends sent sending show shows showed shown showing sell sells sold selling teach teaches taught teaching "
    "owe owes owed lend lends lent wish wishes wished promise promises promised charge charges charged charging "
    "provide provides provided providing pay pays paid paying ask asks asked award "
    "awarded grant granted deny denied denies cost costs fetch fetched serve served".split()
)
_SECOND_OBJECT = frozenset("a an the this that these those some his her my your their our its".split())
_TRANSPARENT = frozenset("]})\"'“”‘’»«*_")
_TOKEN = re.compile(r"[^\W\d_][\w'’-]*|\d[\d,.]*|[^\w\s]")
_PREV_WORD = re.compile(r"([^\W\d_][\w'’-]*)[\s\[\(\{\"'“‘«*_]*\Z")
_FOLLOWING_WORD = re.compile(r"[ \t]+([^\W\d_][\w'’-]*)")
# The next token when it is a word: `_TOKEN.finditer` skips whitespace and "_" (no alternative starts there).
_NEXT_WORD = re.compile(r"[\s_]*([^\W\d_][\w'’-]*)")
_WORD = re.compile(r"\w+")
_ONE_WORD = re.compile(r"\w+")


def _tokens_after(text: str, pos: int, n: int) -> list[str]:
    """The next `n` tokens after `pos` (lower-cased words, numbers, punctuation), closing brackets/quotes skipped."""
    out: list[str] = []
    for m in _TOKEN.finditer(text, pos):
        tok = m.group()
        if tok in _TRANSPARENT:
            continue
        out.append(tok.lower())
        if len(out) == n:
            break
    return out


def _prev_word(text: str, pos: int) -> str:
    m = _PREV_WORD.search(text, max(0, pos - 40), pos)
    return m.group(1).lower() if m else ""


def _is_punct(tok: str | None) -> bool:
    return tok is None or not (tok[0].isalnum())


def resolve_her(text: str, start: int, end: int) -> str:
    """Whether "her" at text[start:end] is an object ("object" -> him) or a possessive ("possessive" -> his)."""
    toks = _tokens_after(text, end, 8)
    nxt = toks[0] if toks else None
    if _is_punct(nxt):
        return "object"
    assert nxt is not None
    prev = _prev_word(text, start)
    if nxt in ("home", "back") and prev in _PREPOSITION_SET:
        return "possessive"
    if nxt in _OBJECT_NEXT and nxt not in _NP_START:
        return "object"
    if nxt.endswith("ly") and len(nxt) > 4 and nxt not in _LY_NOT_ADVERB:
        return "object"
    if nxt in _BASE_VERBS:
        return "object"
    nxt2 = toks[1] if len(toks) > 1 else None
    if nxt.endswith("ed") and nxt2 is not None and (nxt2 in _DETERMINERS.split() or nxt2 in _PRONOUNS.split()):
        return "object"
    if prev in _PREPOSITION_SET:
        return "possessive"
    if nxt in _PREDICATE_ADJ and (_is_punct(nxt2) or nxt2 in _OBJECT_NEXT):
        return "object"
    if prev in _DITRANSITIVE:
        # "gave her advice." (object) vs "gave her book to Ann" (possessive): look past the noun phrase.
        for i, tok in enumerate(toks):
            if tok in ("to", "for") or (i > 0 and tok in _SECOND_OBJECT):
                return "possessive"  # "gave her son a hat": the noun phrase after "her" is "her son"
            if _is_punct(tok) or (tok in _OBJECT_NEXT and tok not in _NP_START):
                return "object"
        return "object"
    return "possessive"


def resolve_his(text: str, start: int, end: int) -> str:
    """Whether "his" at text[start:end] is a determiner ("possessive" -> her) or stands alone ("independent" -> hers)."""
    m = _NEXT_WORD.match(text, end)
    if m is not None:  # the next token is a word (what `_tokens_after` would find first): decide without the rest
        nxt = m.group(1).lower()
        if nxt != "and" and nxt != "or":
            return "independent" if nxt in _INDEPENDENT_NEXT else "possessive"
    toks = _tokens_after(text, end, 2)
    nxt = toks[0] if toks else None
    if _is_punct(nxt):
        return "independent"
    if nxt in ("and", "or"):
        nxt2 = toks[1] if len(toks) > 1 else None
        return "possessive" if nxt2 in ("her", "his", "my", "your", "their", "our", "its") else "independent"
    if nxt in _INDEPENDENT_NEXT:
        return "independent"
    return "possessive"


# ---------------------------------------------------------------------------------------------------------------
# Data types
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Edit:
    """One replaced span: source [src_start, src_end) became target [tgt_start, tgt_end); `axis` says which lexicon."""

    src_start: int
    src_end: int
    tgt_start: int
    tgt_end: int
    old: str
    new: str
    axis: str

    def offsets(self) -> list[int]:
        """[src_start, src_end, tgt_start, tgt_end], the int form stored in dataset columns."""
        return [self.src_start, self.src_end, self.tgt_start, self.tgt_end]


@dataclass(frozen=True)
class SwapResult:
    """A counterfactual text and the edits that made it from the source text (sorted, non-overlapping)."""

    text: str
    edits: tuple[Edit, ...]

    @property
    def changed(self) -> bool:
        """Whether anything was swapped."""
        return bool(self.edits)


class GroupPermutation(Mapping):
    """Target group of every group of one axis in one example: a derangement plus the mentioned groups' targets.

    Read lazily: an example looks up one or two of nationality's 68 groups, fewer than building a dict of all.
    """

    __slots__ = ("_order", "_index", "_positions", "_over")

    def __init__(self, order: Sequence[str], index: Mapping[str, int], positions: list[int], over: dict[str, str]):
        """Group `order[i]` goes to `order[positions[i]]` unless `over` names its target."""
        self._order, self._index, self._positions, self._over = order, index, positions, over

    def __getitem__(self, group: str) -> str:
        hit = self._over.get(group)
        return hit if hit is not None else self._order[self._positions[self._index[group]]]

    def __iter__(self):
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"GroupPermutation({dict(self)!r})"


try:  # the optional C accelerators (setup.py); without them, the Python code next to each gives the same result
    if os.environ.get("FAIRTUNE_NO_EXTENSIONS"):  # run no compiled code at all (as an install without a compiler)
        raise ImportError("FAIRTUNE_NO_EXTENSIONS is set")
    from fairtune.augment._speedups import derangement as _c_derangement
    from fairtune.augment._speedups import split_matches as _c_split_matches
except ImportError:  # pragma: no cover - exercised by forcing it in the tests
    _c_derangement = _c_split_matches = None


@functools.lru_cache(maxsize=64)
def _order_index(groups: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, int]]:
    """`groups` and {group: position}, built once per lexicon's groups."""
    return groups, {g: i for i, g in enumerate(groups)}


@dataclass(slots=True)
class ExampleState:
    """Choices shared by every field of one example: group permutations and name replacements.

    `key` seeds the group permutations; empty, it is `example_key(texts)`, computed when first needed.
    """

    key: str
    seed: int
    texts: tuple[str, ...] = ()
    perms: dict[str, GroupPermutation] = field(default_factory=dict)
    chosen: dict[tuple[str, str], str] = field(default_factory=dict)  # (axis, lower source) -> replacement
    taken: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)  # (axis, group, slot) -> used targets
    surnames: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower surname -> (axis, replacement)
    _surname_re: re.Pattern | None = None
    _surname_n: int = -1
    _words: frozenset[str] | None = None
    # Finds, in one text, the lower-cased group-lexicon terms that are whole words of it (None: every word).
    vocab: Callable[[str], set[str]] | None = None

    def words(self) -> frozenset[str]:
        """Lower-cased words of the example (a replacement must not be a name already in it).

        With `vocab`, only the words that are terms of the swapper's group lexicons: every question asked of this
        set (which groups are mentioned, is a candidate name already used) is about such terms, so the answers are
        the same, and one automaton pass replaces tokenising the whole example.
        """
        if self._words is None and self.vocab is not None:
            found: set[str] = set()
            for t in self.texts:
                found |= self.vocab(t)
            self._words = frozenset(found)
        if self._words is None:
            words: set[str] = set()
            for t in self.texts:
                low = t.lower()
                if len(low) == len(t):  # lower-casing kept every character in place: one findall over it
                    words.update(_WORD.findall(low))
                else:
                    words.update(w.lower() for w in _WORD.findall(t))
            self._words = frozenset(words)
        return self._words

    def permutation(self, axis: str, groups: Sequence[str], present: set[str]) -> GroupPermutation:
        """Target group of every group, fixed for this example, axis and seed.

        Groups mentioned in the example (`present`) go to distinct groups that are not mentioned when there are
        enough of those ("a Muslim and a Hindu" never becomes "a Hindu and a ..."); otherwise a derangement.
        """
        perm = self.perms.get(axis)
        if perm is None:
            if not self.key:  # computed on first use: most examples never need a group permutation
                self.key = example_key(self.texts)
            seed = f"{self.seed}|{axis}|{self.key}"
            order, index = _order_index(tuple(groups))
            n = len(order)
            if _c_derangement is not None and n > 1:
                # The same draws in C: the key words `random.Random(seed)` seeds the Mersenne Twister with.
                raw = seed.encode()
                positions = _c_derangement((raw + _sha512(raw).digest())[::-1], n)
            else:  # shuffling positions draws what shuffling the groups does
                rng = random.Random(seed)
                positions = list(range(n))
                while True:
                    _shuffle(rng, positions)
                    if not any(map(operator.eq, range(n), positions)):  # a derangement: no group maps to itself
                        break
            over: dict[str, str] = {}
            if present:
                # The mentioned groups in `order`'s order go to the first targets not mentioned, when there are as
                # many (the targets are a permutation of `order`, so n - m of them are free).
                mentioned = [g for g in present if g in index]
                m = len(mentioned)
                if m and n - m >= m:
                    if m > 1:
                        mentioned.sort(key=index.__getitem__)
                    free = []
                    for j in positions:
                        g = order[j]
                        if g not in present:
                            free.append(g)
                            if len(free) == m:
                                break
                    over = dict(zip(mentioned, free))
            perm = self.perms[axis] = GroupPermutation(order, index, positions, over)
        return perm

    def surname_pattern(self) -> re.Pattern | None:
        """A pattern matching every surname established so far in this example (rebuilt when one is added)."""
        if len(self.surnames) != self._surname_n:
            self._surname_n = len(self.surnames)
            words = sorted(self.surnames, key=len, reverse=True)
            self._surname_re = (
                re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.IGNORECASE)
                if words
                else None
            )
        return self._surname_re


def _shuffle(rng: random.Random, x: list) -> None:
    """`rng.shuffle(x)` with the same draws in the same order, without two Python calls per element.

    CPython's shuffle draws `j = _randbelow(i + 1)` for i = n-1 .. 1, and `_randbelow(n)` repeats
    `getrandbits(n.bit_length())` until the value is below n; this does the same inline (tests compare both).
    """
    getrandbits = rng.getrandbits
    for i, n, k in _shuffle_plan(len(x)):
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        x[i], x[j] = x[j], x[i]


@functools.lru_cache(maxsize=64)
def _shuffle_plan(size: int) -> tuple[tuple[int, int, int], ...]:
    """(i, i + 1, bit length of i + 1) for i = size-1 .. 1: the steps of a shuffle of `size` items."""
    return tuple((i, i + 1, (i + 1).bit_length()) for i in range(size - 1, 0, -1))


def _apply_case(src: str, target: str) -> str:
    """`target` in the case of `src`: lower stays canonical, Title -> Title, UPPER -> UPPER."""
    if src.islower():
        return target
    if src.isupper() and sum(ch.isalpha() for ch in src) > 1:
        return target.upper()
    if src[:1].isupper():
        return _titled(target)
    return target


@functools.lru_cache(maxsize=4096)
def _titled(word: str) -> str:
    """`word` with its first character upper-cased (the replacements are lexicon words: a small set, cached)."""
    return word[:1].upper() + word[1:]


def _trie_regex(words: Iterable[str]) -> str:
    """A regex alternation of `words` as a character trie (one branch per prefix, so matching stays linear)."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        end = "" in node
        kids = [(ch, sub) for ch, sub in sorted(node.items()) if ch != ""]
        if not kids:
            return ""
        singles = [ch for ch, sub in kids if set(sub) == {""}]
        alts = [re.escape(ch) + emit(sub) for ch, sub in kids if set(sub) != {""}]
        if len(singles) > 1:
            alts.append("[" + "".join(re.escape(c) for c in singles) + "]")
        elif singles:
            alts.append(re.escape(singles[0]))
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if end:
            body = (body if len(alts) == 1 and len(body) == 1 else "(?:" + body + ")") + "?"
        return body

    return emit(trie)


# Entry codes in the lookup table.
_PAIR, _CONTEXT, _GROUP = 0, 1, 2

# Boundary normalisation for the automaton: ASCII word characters stay, every other byte (ASCII punctuation and
# space, and the "?" that `encode("ascii", "replace")` writes for each non-ASCII character) becomes a space.
_ASCII_WORD = frozenset(c for c in range(128) if re.match(r"\w", chr(c)))
_NORM = bytes(c if c in _ASCII_WORD else 32 for c in range(256))
# The same for ASCII text not yet lower-cased: upper-case letters become lower-case in the same lookup.
_NORM_LOWER = bytes(ord(chr(c).lower()) if c in _ASCII_WORD else 32 for c in range(256))


def _word_char(ch: str) -> bool:
    """A non-ASCII letter or digit (`\\w` beyond ASCII): `_NORM` made it a space, but it joins a word."""
    return ch > "\x7f" and ch.isalnum()


def _normalize(low: str) -> str:
    """`low` padded with one space each side, every non-word character a space (same length + 2)."""
    return (" " + low + " ").encode("ascii", "replace").translate(_NORM).decode("ascii")


def _is_name_homograph(entry: tuple) -> bool:
    """A name-axis term that is also an ordinary word (May, Will, Paris): swapped only inside person spans."""
    if entry[0] == _PAIR:
        return entry[4] and entry[5]
    if entry[0] == _GROUP:
        return entry[7] and entry[8]
    return False


try:  # pragma: no cover - exercised through Swapper
    import ahocorasick_rs as _acrs
except ImportError:  # pragma: no cover - the regex fallback is tested by forcing it
    _acrs = None


# Flags of an automaton key: it is a term of the lookup table / a vocabulary word.
_TERM, _VOCAB = 1, 2


class _Automaton:
    """An Aho-Corasick automaton (ahocorasick_rs, a DFA over bytes) of normalised keys, with what each key means.

    Pattern ids below `n_pure` are one-word keys (" word "), whose matched text is the word itself: `entry[id]` is
    its lookup-table entry (None: not a term) and `vocab[id]` the word (None: not a vocabulary word). The other keys
    (several words, or a word with punctuation: " mr  ", " o brien ") keep their `flags` and are confirmed by text.
    """

    __slots__ = ("ac", "n_pure", "entry", "vocab", "flags")

    def __init__(self, keys: Mapping[str, int], table: Mapping[str, tuple]) -> None:
        items = sorted(keys.items(), key=lambda kv: " " in kv[0][1:-1])  # one-word keys first (stable order)
        self.n_pure = sum(1 for key, _ in items if " " not in key[1:-1])
        self.flags = [flags for _, flags in items]
        self.entry: list[tuple | None] = []
        self.vocab: list[str | None] = []
        for i, (key, flags) in enumerate(items):
            word = key[1:-1]
            pure = i < self.n_pure
            self.entry.append(table[word] if pure and flags & _TERM else None)
            self.vocab.append(word if pure and flags & _VOCAB else None)
        self.ac = _acrs.BytesAhoCorasick(
            [key.encode("ascii") for key, _ in items], implementation=_acrs.Implementation.DFA
        )

    def find(self, norm: bytes) -> list[tuple[int, int, int]]:
        """(pattern id, start, end) of every occurrence of every key in `norm`, overlapping, by end position."""
        return self.ac.find_matches_as_indexes(norm, overlapping=True)


class _Compiled:
    """Everything a `Swapper` derives from its lexicons: lookup table, automaton, fallback regex (lazy)."""

    def __init__(self, lexicons: tuple[Lexicon, ...], use_automaton: bool = True) -> None:
        self.lexicons = lexicons
        table: dict[str, tuple] = {}
        self.stateful = False
        for li, lex in enumerate(lexicons):
            is_name = lex.axis in NAME_AXES
            if isinstance(lex, PairLexicon):
                for word, roles in lex.contextual.items():
                    table.setdefault(word, (_CONTEXT, lex.axis, dict(roles), word))
                for word, target in lex.mapping.items():
                    homograph = word in lex.homographs
                    table.setdefault(word, (_PAIR, lex.axis, target, lex.capitalized_only, homograph, is_name))
            else:
                self.stateful = True
                for word, (group, slot, rank) in lex.index.items():
                    if is_name and slot == SURNAME_SLOT:  # surnames swap only after a first name (or re-mentioned)
                        continue
                    homograph = word in lex.homographs
                    entry = (_GROUP, lex.axis, li, group, slot, rank, lex.capitalized_only, homograph, is_name)
                    table.setdefault(word, entry)
        self.table = table
        self.words = sorted(table, key=len, reverse=True)
        self._pattern: re.Pattern | None = None
        self._pattern_i: re.Pattern | None = None
        self._blob: bytes | None = None
        self.automaton = self.automaton_free = None
        self.vocab_words: frozenset[str] = frozenset()
        self.vocab_finder: Callable[[str], set[str]] | None = None
        # Per group lexicon (by index): its groups in order, built once instead of per permutation.
        self.group_order = {li: tuple(lex.groups) for li, lex in enumerate(lexicons) if isinstance(lex, GroupLexicon)}
        if use_automaton and _acrs is not None and table:
            self._build_automata(table)

    def _build_automata(self, table: dict[str, tuple]) -> None:
        """The two automata, each also holding the one-word group-lexicon terms (the example's vocabulary).

        `automaton` holds every term (NER rows with person spans); `automaton_free` (free text) leaves out the
        one-word name homographs, which never swap outside a person span: dropping a one-word candidate that would
        be rejected changes no other match (no other term can start or end inside that word). Both also hold the
        vocabulary words (surnames and homographs too) flagged `_VOCAB`, so the pass that finds the matches also
        finds the words `ExampleState.words()` needs, instead of a second pass over the text.
        Words with one normalised form have one length.
        """
        vocab = {
            w for lex in self.lexicons if isinstance(lex, GroupLexicon) for w in lex.index if _ONE_WORD.fullmatch(w)
        }
        full: dict[str, int] = {}
        free: dict[str, int] = {}
        for word, entry in table.items():
            key = _normalize(word)
            full[key] = full.get(key, 0) | _TERM
            if not (_is_name_homograph(entry) and _ONE_WORD.fullmatch(word)):
                free[key] = free.get(key, 0) | _TERM
        for w in vocab:
            key = _normalize(w)
            for keys in (full, free):
                keys[key] = keys.get(key, 0) | _VOCAB
        self.automaton = _Automaton(full, table)
        self.automaton_free = _Automaton(free, table) if free else None
        if vocab:
            self.vocab_words = frozenset(vocab)
            self._vocab_automaton = _Automaton({_normalize(w): _VOCAB for w in vocab}, table)
            self.vocab_finder = self._find_vocab

    def _find_vocab(self, text: str) -> set[str]:
        low = text.lower()
        if len(low) != len(text):  # lower-casing moved characters: tokenise as ExampleState.words() does
            return {w.lower() for w in _WORD.findall(text)} & self.vocab_words
        words, exact, found = self.vocab_words, low.isascii(), set()
        for _pi, s, e in self._vocab_automaton.find(_normalize(low).encode("ascii")):
            e -= 2
            w = low[s:e]
            if w not in words:
                continue
            if not exact:
                before, after = low[s - 1 : s] or " ", low[e : e + 1] or " "
                if before.isalnum() or before == "_" or after.isalnum() or after == "_":
                    continue
            found.add(w)
        return found

    def __reduce__(self):  # never pickled: a Swapper pickles its key and lexicons instead
        raise TypeError("_Compiled is rebuilt per process; pickle the Swapper")

    def blob(self) -> bytes:
        """The lexicons pickled once (what a pickled `Swapper` carries)."""
        if self._blob is None:
            self._blob = pickle.dumps(self.lexicons, protocol=pickle.HIGHEST_PROTOCOL)
        return self._blob

    def pattern(self) -> re.Pattern | None:
        """The case-sensitive trie regex over the terms (matched against lower-cased text)."""
        if self._pattern is None and self.words:
            self._pattern = re.compile(r"(?<!\w)(?:" + _trie_regex(self.words) + r")(?!\w)")
        return self._pattern

    def pattern_i(self) -> re.Pattern | None:
        """The IGNORECASE twin, for text whose lower-casing changes its length (offsets would shift)."""
        if self._pattern_i is None and self.words:
            self._pattern_i = re.compile(r"(?<!\w)(?:" + _trie_regex(self.words) + r")(?!\w)", re.IGNORECASE)
        return self._pattern_i


# Compiled matchers of this process, by lexicon content (and matcher kind): built once per worker process.
_COMPILED: dict[tuple[str, bool], _Compiled] = {}


def _canonical(obj):
    """A deterministic, hashable form of a lexicon field (sets sorted, mappings sorted by key)."""
    if isinstance(obj, Mapping):
        return tuple(sorted((str(k), _canonical(v)) for k, v in obj.items()))
    if isinstance(obj, frozenset | set):
        return tuple(sorted(_canonical(v) for v in obj))
    if isinstance(obj, tuple | list):
        return tuple(_canonical(v) for v in obj)
    return obj


# Digest of each lexicon object seen (lexicons are immutable; the object is kept so its id stays unique).
_DIGESTS: dict[int, tuple[Lexicon, str]] = {}


def _lexicon_digest(lex: Lexicon) -> str:
    hit = _DIGESTS.get(id(lex))
    if hit is not None and hit[0] is lex:
        return hit[1]
    parts = [(f.name, _canonical(getattr(lex, f.name))) for f in fields(lex) if f.name != "source"]
    digest = hashlib.sha256(repr((lex.kind, parts)).encode("utf-8", "surrogatepass")).hexdigest()
    if len(_DIGESTS) >= 256:
        _DIGESTS.clear()
    _DIGESTS[id(lex)] = (lex, digest)
    return digest


def lexicons_digest(lexicons: Sequence[Lexicon]) -> str:
    """A content hash of `lexicons`, the same in every process (keys the compiled-matcher cache and fingerprints)."""
    return hashlib.sha256("|".join(_lexicon_digest(lex) for lex in lexicons).encode()).hexdigest()[:32]


_COMPILED_MAX = 16  # distinct lexicon sets kept per process (oldest dropped first)


def _compiled(lexicons: tuple[Lexicon, ...], key: str, use_automaton: bool) -> _Compiled:
    got = _COMPILED.get((key, use_automaton))
    if got is None:
        while len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        got = _COMPILED[(key, use_automaton)] = _Compiled(lexicons, use_automaton)
    return got


class Swapper:
    """Swaps the terms of the given lexicons in text, keeping case, offsets and per-example consistency.

    `matcher="automaton"` (default; the regex when ahocorasick-rs is missing) or `"regex"` picks the matching engine;
    both give the same output.
    """

    def __init__(self, lexicons: Sequence[Lexicon], seed: int = 0, *, matcher: str = "automaton") -> None:
        """Build (or take from this process's cache) the lookup table and matcher of `lexicons` (earlier win)."""
        if matcher not in ("automaton", "regex"):
            raise ValueError(f"matcher {matcher!r} is not one of automaton, regex.")
        lexicons = tuple(lexicons)
        self.seed = int(seed)
        self.matcher = matcher
        self.key = lexicons_digest(lexicons)
        self._init(_compiled(lexicons, self.key, matcher == "automaton"))

    def _init(self, compiled: _Compiled) -> None:
        self._c = compiled
        self.lexicons = compiled.lexicons
        self.axes = tuple(lex.axis for lex in self.lexicons)
        self._table = compiled.table
        self._stateful = compiled.stateful
        self._automaton = compiled.automaton
        # `Swapper._scan` makes the example's state itself, at the first group term: a text without one never
        # builds it. A subclass whose `_scan` may need the state after the base scan gets one up front, as before.
        self._lazy_state = type(self)._scan is Swapper._scan

    def fingerprint(self) -> str:
        """What decides this engine's output besides the text (lexicons, seed, engine): keys datasets' cache."""
        return f"{type(self).__name__}|{self.key}|{self.seed}"

    def __getstate__(self) -> dict:
        """Pickle the cache key, the seed and the lexicons as one bytes blob (cheap for dill and datasets hashing)."""
        return {
            "key": self.key,
            "seed": self.seed,
            "matcher": self.matcher,
            "blob": self._c.blob(),
        }

    def __setstate__(self, state: dict) -> None:
        """Reuse this process's compiled matcher for the key, or build it once from the blob."""
        self.key, self.seed, self.matcher = state["key"], state["seed"], state["matcher"]
        use_automaton = self.matcher == "automaton"
        got = _COMPILED.get((self.key, use_automaton))
        if got is None:
            got = _compiled(pickle.loads(state["blob"]), self.key, use_automaton)
        self._init(got)

    # -- public API -------------------------------------------------------------------------------------------
    def new_state(self, texts: Sequence[str] = ()) -> ExampleState:
        """A fresh per-example state for the fields `texts`; their text seeds the group permutations."""
        return ExampleState(key="", seed=self.seed, texts=tuple(texts), vocab=self._c.vocab_finder)

    def counterfactual(self, text: str) -> str:
        """The counterfactual of `text` (the fast path of `swap`: same result, no `Edit` objects)."""
        raw = self._scan(text, self.new_state([text]) if self._stateful and not self._lazy_state else None, None)
        if not raw:
            return text
        out: list[str] = []
        last = 0
        for s, e, new, _axis in raw:
            out += (text[last:s], new)
            last = e
        out += (text[last:],)
        return "".join(out)

    def swap(
        self,
        text: str,
        *,
        state: ExampleState | None = None,
        name_spans: Sequence[tuple[int, int]] | None = None,
    ) -> SwapResult:
        """Swap `text`; `state` shares name choices across fields, `name_spans` limits names to those char spans."""
        if state is None and self._stateful and not self._lazy_state:
            state = self.new_state([text])
        raw = self._scan(text, state, name_spans)
        return _assemble(text, raw)

    def swap_fields(
        self,
        texts: Sequence[str],
        *,
        name_spans: Sequence[Sequence[tuple[int, int]] | None] | None = None,
    ) -> list[SwapResult]:
        """Swap the fields of one example together (names and group choices consistent across them)."""
        state = self.new_state(texts)
        spans = name_spans or [None] * len(texts)
        return [self.swap(t, state=state, name_spans=s) for t, s in zip(texts, spans)]

    def terms_in(self, text: str) -> list[tuple[str, str, str]]:
        """(axis, matched text, group label or "") for every lexicon term found in `text` (no swapping)."""
        if not self._table:
            return []
        out = []
        for m in self._c.pattern_i().finditer(text):
            src = m.group()
            entry = self._lookup(src)
            if entry is None:
                continue
            code, axis = entry[0], entry[1]
            if code == _GROUP:
                _, _, li, group, _slot, _rank, cap, homograph, _ = entry
                if (cap and not src[:1].isupper()) or homograph:
                    continue
                out.append((axis, src, group))
                continue
            lex = next(lx for lx in self.lexicons if lx.axis == axis)
            assert isinstance(lex, PairLexicon)
            if code == _PAIR and ((entry[3] and not src[:1].isupper()) or entry[4]):
                continue
            out.append((axis, src, lex.group_of.get(src.lower(), "")))
        return out

    # -- internals --------------------------------------------------------------------------------------------
    def _spans(self, text: str, free: bool = True) -> list[tuple[int, int]]:
        """(start, end) of every term match, leftmost then longest, non-overlapping: one pass over the text.

        `free`: free text (no person spans), where one-word name homographs are never candidates.
        """
        return self._match(text, free)[0]

    def _match(self, text: str, free: bool = True) -> tuple[list[tuple[int, int]], list[str] | None]:
        """`_spans`, plus the vocabulary words of `text` (what `ExampleState.vocab` finds) from the same pass.

        The words are None where they were not looked for (regex matcher, lower-casing that moves characters).
        """
        hits, found = self._hits(text, free)
        return [(s, e) for s, e, _entry in hits], found

    def _hits(self, text: str, free: bool = True) -> tuple[list[tuple[int, int, tuple | None]], list[str] | None]:
        """`_match` with each span's lookup-table entry where the pass already knows it (else None: look it up)."""
        automaton = self._automaton
        raw: bytes | None = None  # the padded text with one "?" per non-ASCII character (offsets unchanged)
        if text.isascii():  # lower-case and normalise in one table lookup per byte
            low = None
            if automaton is None:
                return [(*m.span(), None) for m in self._c.pattern().finditer(text.lower())], None
            norm = (" " + text + " ").encode("ascii").translate(_NORM_LOWER)
        else:
            low = text.lower()
            if len(low) != len(text):
                return [(*m.span(), None) for m in self._c.pattern_i().finditer(text)], None
            if automaton is None:
                return [(*m.span(), None) for m in self._c.pattern().finditer(low)], None
            padded = " " + low + " "
            raw = padded.encode("ascii", "replace")
            norm = raw.translate(_NORM)
        if free:
            automaton = self._c.automaton_free
            if automaton is None:  # no free terms and no vocabulary words
                return [], None
        # (pattern id, start, end) in the padded text: the key " word " starts at the space before the word, so the
        # word is text[start : end - 2]. Overlapping matches come by end position.
        ms = automaton.find(norm)
        if ms and raw is not None:
            # A non-ASCII letter or digit ("é") became a space in `norm` but is no word boundary: drop the matches
            # that start or end at one (only a "?" in `raw` can be one).
            near = [m for m in ms if raw[m[1]] == 63 or raw[m[2] - 1] == 63]
            if near:
                drop = {m for m in near if _word_char(padded[m[1]]) or _word_char(padded[m[2] - 1])}
                if drop:
                    ms = [m for m in ms if m not in drop]
        if not ms:
            return [], []
        if _c_split_matches is not None:  # the branch below, in C
            split = _c_split_matches(ms, automaton.entry, automaton.vocab, automaton.n_pure)
            if split is not None:
                return split
        elif max(ms)[0] < automaton.n_pure:
            # Only one-word keys (the common case): the matched word is the key's word (a non-ASCII character
            # never maps to a word character), no two overlap, and they come sorted; the entries and the words
            # straight from the pattern ids.
            entry, vocab = automaton.entry, automaton.vocab
            return [(s, e - 2, entry[pi]) for pi, s, e in ms if entry[pi] is not None], [
                vocab[pi] for pi, _s, _e in ms if vocab[pi] is not None
            ]
        if low is None:
            low = text.lower()
        table, vocab_words = self._table, self._c.vocab_words
        cands: list[tuple[int, int, tuple | None]] = []
        found: list[str] = []
        for pi, s, e in ms:
            if pi < automaton.n_pure:
                if automaton.entry[pi] is not None:
                    cands.append((s, e - 2, automaton.entry[pi]))
                if automaton.vocab[pi] is not None:
                    found.append(automaton.vocab[pi])
                continue
            w = low[s : e - 2]
            flags = automaton.flags[pi]
            if flags & _TERM and w in table:  # not another term with the same normalised form ("mr." / "mr,")
                cands.append((s, e - 2, None))
            if flags & _VOCAB and w in vocab_words:
                found.append(w)
        if len(cands) > 1:  # a key of several words may overlap others: leftmost, then longest
            cands.sort(key=lambda c: (c[0], -c[1]))
            out, pos = [], 0
            for c in cands:
                if c[0] >= pos:
                    out.append(c)
                    pos = c[1]
            cands = out
        return cands, found

    def _lookup(self, src: str) -> tuple | None:
        entry = self._table.get(src.lower())
        if entry is None:  # IGNORECASE also matches odd Unicode case variants (Kelvin sign, long s)
            entry = self._table.get(unicodedata.normalize("NFKC", src).lower())
        return entry

    def _scan(
        self, text: str, state: ExampleState | None, name_spans: Sequence[tuple[int, int]] | None
    ) -> list[tuple[int, int, str, str]]:
        """(start, end, replacement, axis) for every swap in `text`, sorted and non-overlapping."""
        if not self._table:
            return []
        table = self._table
        out: list[tuple[int, int, str, str]] = []
        covered = 0
        starts = [s for s, _ in name_spans] if name_spans is not None else None
        hits, found = self._hits(text, name_spans is None)
        low = None
        for s, e, entry in hits:
            if s < covered:
                continue
            src = text[s:e]
            if entry is None:
                if low is None:
                    low = text.lower()
                entry = table.get(low[s:e]) or self._lookup(src)
                if entry is None:
                    continue
            code = entry[0]
            if code == _PAIR:
                _, axis, target, cap, homograph, is_name = entry
                if cap and not src[:1].isupper():
                    continue
                if is_name and not _name_ok(s, e, homograph, name_spans, starts):
                    continue
                out.append((s, e, target if src.islower() else _apply_case(src, target), axis))
            elif code == _CONTEXT:
                _, axis, roles, word = entry
                role = resolve_her(text, s, e) if word == "her" else resolve_his(text, s, e) if word == "his" else ""
                target = roles.get(role) or next(v for k, v in roles.items() if k != "group")
                out.append((s, e, _apply_case(src, target), axis))
            else:
                _, axis, li, group, slot, rank, cap, homograph, is_name = entry
                if cap and not src[:1].isupper():
                    continue
                if is_name and not _name_ok(s, e, homograph, name_spans, starts):
                    continue
                if state is None:
                    state = self.new_state([text])
                if found is not None:
                    if state._words is None and state.vocab == self._c.vocab_finder and state.texts == (text,):
                        state._words = frozenset(found)  # what state.words() would find, from the pass above
                    found = None
                lex = self.lexicons[li]  # a GroupLexicon: only those make _GROUP entries
                perm = state.perms.get(axis)
                if perm is None:
                    index = lex.index
                    present = {index[w][0] for w in state.words() if w in index}
                    perm = state.permutation(axis, self._c.group_order[li], present)
                tgroup = perm[group]
                new = self._group_target(state, lex, src, group, tgroup, slot, rank)
                if new is None:
                    continue
                article = _article_fix(text, s, new, out[-1][1] if out else 0)
                if article is not None:
                    out.append((*article, axis))
                out.append((s, e, _apply_case(src, new), axis))
                covered = e
                if is_name and slot != SURNAME_SLOT:
                    sur = self._surname_after(text, e, state, lex, tgroup, name_spans, starts)
                    if sur is not None:
                        out.append(sur)
                        covered = sur[1]
        if state is not None and state.surnames:
            out = self._bare_surnames(text, out, state, name_spans, starts)
        return out

    def _group_target(
        self, state: ExampleState, lex: GroupLexicon, src: str, group: str, tgroup: str, slot: str, rank: int
    ) -> str | None:
        key = (lex.axis, src.lower())
        chosen = state.chosen.get(key)
        if chosen is not None:
            return chosen
        terms = lex.groups[tgroup].get(slot)
        if not terms:
            return None
        taken = state.taken.setdefault((lex.axis, tgroup, slot), set())
        present = state.words()
        for step in range(len(terms)):  # injective within the example, and never a word already in it
            cand = terms[(rank + step) % len(terms)]
            if cand not in taken and cand.lower() not in present:
                break
        else:
            cand = terms[rank % len(terms)]
        taken.add(cand)
        state.chosen[key] = cand
        return cand

    def _surname_after(
        self,
        text: str,
        pos: int,
        state: ExampleState,
        lex: GroupLexicon,
        tgroup: str,
        name_spans: Sequence[tuple[int, int]] | None,
        starts: list[int] | None,
    ) -> tuple[int, int, str, str] | None:
        m = _FOLLOWING_WORD.match(text, pos)
        if m is None:
            return None
        word = m.group(1)
        hit = lex.index.get(word.lower())
        if hit is None or hit[1] != SURNAME_SLOT or not word[:1].isupper():
            return None
        s, e = m.span(1)
        if name_spans is not None and not _inside(s, e, name_spans, starts):
            return None
        known = state.surnames.get(word.lower())
        if known is not None:
            new = known[1]
        else:
            new = self._group_target(state, lex, word, hit[0], tgroup, SURNAME_SLOT, hit[2])
            if new is None:
                return None
            state.surnames[word.lower()] = (lex.axis, new)
        return (s, e, _apply_case(word, new), lex.axis)

    def _bare_surnames(
        self,
        text: str,
        out: list[tuple[int, int, str, str]],
        state: ExampleState,
        name_spans: Sequence[tuple[int, int]] | None,
        starts: list[int] | None,
    ) -> list[tuple[int, int, str, str]]:
        pattern = state.surname_pattern()
        if pattern is None:
            return out
        done = {s for s, _e, _n, _a in out}
        extra = []
        for m in pattern.finditer(text):
            s, e = m.span()
            word = m.group()
            if s in done or not word[:1].isupper():
                continue
            axis, new = state.surnames[word.lower()]
            lex = next(lx for lx in self.lexicons if lx.axis == axis)
            if word.lower() in lex.homographs and name_spans is None:
                continue
            if name_spans is not None and not _inside(s, e, name_spans, starts):
                continue
            if any(a < e and s < b for a, b, _n, _x in out):
                continue
            extra.append((s, e, _apply_case(word, new), axis))
        return sorted(out + extra) if extra else out


_ARTICLE = re.compile(r"(?<!\w)(an?)[ \t]+\Z", re.IGNORECASE)


def _article_fix(text: str, start: int, new: str, floor: int) -> tuple[int, int, str] | None:
    """Edit for "a"/"an" before a replaced word whose first sound changed ("a Muslim" -> "an Atheist")."""
    lo = max(floor, start - 4)
    before = text[lo:start].rstrip(" \t")
    if len(before) == start - lo or before[-1:] not in ("a", "n", "A", "N"):  # cannot match: skip the regex
        return None
    m = _ARTICLE.search(text, lo, start)
    if m is None:
        return None
    art = m.group(1)
    want = "an" if new[:1].lower() in "aeiou" else "a"
    if art.lower() == want:
        return None
    return m.start(1), m.end(1), _apply_case(art, want) if art != "A" else want.capitalize()


def _inside(s: int, e: int, spans: Sequence[tuple[int, int]], starts: list[int] | None) -> bool:
    i = bisect_right(starts, s) - 1 if starts is not None else -1
    return i >= 0 and spans[i][0] <= s and e <= spans[i][1]


def _name_ok(
    s: int, e: int, homograph: bool, spans: Sequence[tuple[int, int]] | None, starts: list[int] | None
) -> bool:
    """Names swap in free text unless homographs; with person spans given, only inside them (homographs too)."""
    if spans is None:
        return not homograph
    return _inside(s, e, spans, starts)


def _assemble(text: str, raw: list[tuple[int, int, str, str]]) -> SwapResult:
    if not raw:
        return SwapResult(text, ())
    out, edits, last, shift = [], [], 0, 0
    for s, e, new, axis in raw:
        out.append(text[last:s])
        out.append(new)
        t0 = s + shift
        edits.append(Edit(s, e, t0, t0 + len(new), text[s:e], new, axis))
        shift += len(new) - (e - s)
        last = e
    out.append(text[last:])
    return SwapResult("".join(out), tuple(edits))


def map_offset(edits: Sequence[Edit], pos: int, *, side: str = "start") -> int:
    """Map a source character offset to the target text; inside an edit, snap to its start or end (`side`)."""
    shift = 0
    for ed in edits:
        if pos <= ed.src_start:
            break
        if pos >= ed.src_end:
            shift = ed.tgt_end - ed.src_end
            continue
        return ed.tgt_start if side == "start" else ed.tgt_end
    return pos + shift


def example_key(texts: Sequence[str]) -> str:
    """A short stable key for an example's text (seeds its group permutations)."""
    joined = texts[0] if len(texts) == 1 else chr(31).join(texts)
    return f"{zlib.crc32(joined.encode('utf-8', 'surrogatepass')):08x}"
