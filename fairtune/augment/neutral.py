"""Mode `neutralize`: replace protected terms by neutral forms instead of swapping them.

he/she -> they (and the verb after the subject made plural where `neutral.json` lists it: "she is" -> "they are",
"he says" -> "they say", "he's" -> "they're"; a regular -s verb loses its -s: "she repairs" -> "they repair"), him -> them, her -> them | their and his -> their | theirs (from
context, as the swapper resolves them), man/woman -> person, mother/father -> parent, and first names -> a name
borne about equally by women and men (Census 1990), the same name for every mention of one person and distinct
names for distinct people within one example. "a"/"an" before a replaced word follows its new first sound.

`Neutralizer` is a `Swapper` over these neutral lexicons, so the offsets (`Edit`s), QA span realignment and NER
token maps work unchanged. Axes: `gender`, `names`, `names_race` (its first names); religion and nationality have
no neutral form here and are refused with the fix.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from importlib import resources

from fairtune.augment.lexicon import NAME_AXES, SURNAME_SLOT, GroupLexicon, Lexicon, PairLexicon
from fairtune.augment.swapper import ExampleState, Swapper, _apply_case, _article_fix

NEUTRAL_AXES = ("gender", "names", "names_race")
_NEXT = re.compile(r"[ \t]+([^\W\d_][\w'’-]*)")
_CONTRACTION = re.compile(r"(['’])[sS](?!\w)")


@functools.cache
def neutral_data() -> dict:
    """The built-in neutral forms (`lexicons/neutral.json`), validated once."""
    ref = resources.files("fairtune.augment") / "lexicons" / "neutral.json"
    data = json.loads(ref.read_text(encoding="utf-8"))
    for key in ("words", "contextual", "subjects", "adverbs", "perfect", "verbs", "names"):
        if key not in data:
            raise ValueError(f"lexicon built-in neutral.json: missing key {key!r}. Fix: rebuild it with _build.py.")
    if not data["names"]:
        raise ValueError("lexicon built-in neutral.json: `names` is empty. Fix: rebuild it with _build.py.")
    return data


def neutral_lexicons(lexicons: Sequence[Lexicon]) -> list[Lexicon]:
    """The neutral lexicons for the axes of `lexicons` (gender words; first names of names/names_race)."""
    data = neutral_data()
    out: list[Lexicon] = []
    names: dict[str, str] = {}
    homographs: set[str] = set()
    for lex in lexicons:
        if lex.axis == "gender":
            out.append(
                PairLexicon(
                    axis="gender",
                    mapping={k.lower(): v for k, v in data["words"].items()},
                    contextual={k: dict(v) for k, v in data["contextual"].items()},
                    source="built-in neutral.json",
                )
            )
        elif lex.axis in NAME_AXES:
            if isinstance(lex, PairLexicon):
                terms = list(lex.mapping)
            else:
                assert isinstance(lex, GroupLexicon)
                terms = [t for t, (_g, slot, _r) in lex.index.items() if slot != SURNAME_SLOT]
            for t in terms:
                names.setdefault(t, data["names"][0])
            homographs |= set(lex.homographs)
        else:
            raise ValueError(
                f"mode neutralize has no neutral form for axis {lex.axis!r}; it supports the axes "
                f"{', '.join(NEUTRAL_AXES)}. Fix: drop {lex.axis!r} from the axes (--axes / cda_axes), or use "
                "two_sided / one_sided."
            )
    if names:
        out.append(
            PairLexicon(
                axis="names",
                mapping=names,
                capitalized_only=True,
                homographs=frozenset(homographs),
                source="built-in neutral.json",
            )
        )
    return out


_ES_ENDINGS = ("ches", "shes", "sses", "xes", "zzes", "oes")


def _regular_plural(word: str, not_verbs: frozenset[str]) -> str | None:
    """The plural form of a regular third-person verb after "they" ("repairs" -> "repair", "watches" -> "watch",
    "tries" -> "try"), or None for a word that is not one (lower case, ends in a single -s, not in `not_verbs`)."""
    if not word.islower() or len(word) < 4 or word[-1] != "s" or word.endswith(("ss", "us", "is", "'s", "’s")):
        return None
    if word in not_verbs:
        return None
    if word.endswith("ies"):
        return word[:-3] + "y" if len(word) > 5 else word[:-1]  # tries -> try; dies, lies -> die, lie
    if word.endswith(_ES_ENDINGS):
        return word[:-2]
    return word[:-1]


class Neutralizer(Swapper):
    """A `Swapper` that writes neutral forms: same offsets and row handling, `mode="neutralize"`."""

    neutral = True

    def __init__(self, lexicons: Sequence[Lexicon], seed: int = 0, *, matcher: str = "automaton") -> None:
        """Neutral lexicons for the axes of `lexicons` (gender, names, names_race), compiled once like a Swapper."""
        super().__init__(neutral_lexicons(lexicons), seed=seed, matcher=matcher)

    def fingerprint(self) -> str:
        """The swapper's fingerprint plus the neutral forms (verbs, adverbs, names of `neutral.json`)."""
        data = json.dumps(neutral_data(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        return f"{super().fingerprint()}|{hashlib.sha256(data).hexdigest()[:16]}"

    def _init(self, compiled) -> None:
        super()._init(compiled)
        self._stateful = True  # neutral names are chosen per example
        data = neutral_data()
        self._subjects = frozenset(data["subjects"])
        self._adverbs = frozenset(data["adverbs"])
        self._perfect = frozenset(data["perfect"])
        self._verbs = data["verbs"]
        self._not_verbs = frozenset(data.get("not_verbs", ()))
        self._names = tuple(data["names"])

    def _scan(
        self, text: str, state: ExampleState | None, name_spans: Sequence[tuple[int, int]] | None
    ) -> list[tuple[int, int, str, str]]:
        raw = super()._scan(text, state, name_spans)
        if not raw:
            return raw
        if state is None:
            state = self.new_state([text])
        out: list[tuple[int, int, str, str]] = []
        for i, (s, e, new, axis) in enumerate(raw):
            src = text[s:e]
            if axis == "names":
                out.append((s, e, _apply_case(src, self._neutral_name(state, src)), axis))
                continue
            floor = out[-1][1] if out else 0
            article = _article_fix(text, s, new, floor)
            if article is not None:
                out.append((*article, axis))
            out.append((s, e, new, axis))
            if src.lower() in self._subjects:
                limit = raw[i + 1][0] if i + 1 < len(raw) else len(text)
                verb = self._agreement(text, e, limit)
                if verb is not None:
                    out.append((*verb, axis))
        return out

    def _neutral_name(self, state: ExampleState, src: str) -> str:
        """One neutral name per person in the example (the same for every mention), distinct while they last."""
        key = ("neutral", src.lower())
        chosen = state.chosen.get(key)
        if chosen is not None:
            return chosen
        taken = state.taken.setdefault(("neutral", "", ""), set())
        present = state.words()
        free = [n for n in self._names if n not in taken and n.lower() not in present]
        chosen = free[0] if free else self._names[len(taken) % len(self._names)]
        taken.add(chosen)
        state.chosen[key] = chosen
        return chosen

    def _agreement(self, text: str, pos: int, limit: int) -> tuple[int, int, str] | None:
        """The edit making the verb after a subject "they" plural ("is" -> "are", "'s" -> "'re"), if one is known."""
        m = _CONTRACTION.match(text, pos)
        if m is not None:
            nxt = _NEXT.match(text, m.end())
            form = "ve" if nxt is not None and nxt.group(1).lower() in self._perfect else "re"
            return m.start(), m.end(), m.group(1) + (form.upper() if text[m.end() - 1] == "S" else form)
        for _ in range(2):  # the verb, or one adverb and then the verb ("she always says")
            m = _NEXT.match(text, pos)
            if m is None:
                return None
            word = m.group(1)
            plural = self._verbs.get(word.lower()) or _regular_plural(word, self._not_verbs)
            if plural is not None:
                s, e = m.span(1)
                return (s, e, _apply_case(word, plural)) if e <= limit else None
            if word.lower() not in self._adverbs:
                return None
            pos = m.end()
        return None
