"""WinoBias dev pro/anti pairs: swapping a pro-stereotyped sentence must give its anti-stereotyped twin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fairtune.augment import CounterfactualAugmenter, builtin_lexicon

WINOBIAS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "winobias"
pytestmark = pytest.mark.skipif(not WINOBIAS.is_dir(), reason="../shared/data/winobias not present")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _pairs(kind: str) -> list[tuple[str, str]]:
    pro = (WINOBIAS / f"pro_stereotyped_{kind}.txt.dev").read_text().splitlines()
    anti = (WINOBIAS / f"anti_stereotyped_{kind}.txt.dev").read_text().splitlines()
    assert len(pro) == len(anti) == 396
    strip = lambda line: line.split(" ", 1)[1]  # noqa: E731 - drop the "<id> " prefix
    return [(strip(p), strip(a)) for p, a in zip(pro, anti)]


def full_swap_pair(pro: str, anti: str) -> bool:
    """Whether `anti` is `pro` with every gendered word swapped and nothing else changed (a well-formed twin)."""
    lex = builtin_lexicon("gender")
    allowed = {w: {t.lower()} for w, t in lex.mapping.items()}
    allowed |= {w: {t.lower() for k, t in roles.items() if k != "group"} for w, roles in lex.contextual.items()}
    pt, at = _TOKEN.findall(pro), _TOKEN.findall(anti)
    if len(pt) != len(at):
        return False
    return all(a.lower() in allowed[p.lower()] if p.lower() in allowed else p == a for p, a in zip(pt, at))


def exact_rates(kind: str) -> dict[str, float]:
    """Exact-match rates for one WinoBias file, both directions, on all pairs and on well-formed pairs."""
    aug = CounterfactualAugmenter(axes=("gender",))
    pairs = _pairs(kind)
    good = [full_swap_pair(p, a) for p, a in pairs]
    pro_anti = [aug.counterfactual(p) == a for p, a in pairs]
    anti_pro = [aug.counterfactual(a) == p for p, a in pairs]
    n_good = sum(good)
    return {
        "pro_to_anti": sum(pro_anti) / len(pairs),
        "anti_to_pro": sum(anti_pro) / len(pairs),
        "pro_to_anti_wellformed": sum(x for x, g in zip(pro_anti, good) if g) / n_good,
        "anti_to_pro_wellformed": sum(x for x, g in zip(anti_pro, good) if g) / n_good,
        "wellformed_pairs": n_good,
        "hits": sum(pro_anti),
    }


def test_winobias_dev_exactness() -> None:
    r1, r2 = exact_rates("type1"), exact_rates("type2")
    print(f"\nWinoBias dev exact (pro->anti): type1 {r1}\n type2 {r2}")
    # Pooled over both files (792 sentences): at least 97% exact, in both directions.
    assert (r1["hits"] + r2["hits"]) / 792 >= 0.97
    for r in (r1, r2):
        assert r["anti_to_pro"] >= 0.965
        assert r["pro_to_anti"] >= 0.965
        # On the pairs whose anti sentence is a full gender swap of the pro sentence, practically everything.
        assert r["pro_to_anti_wellformed"] >= 0.99 and r["anti_to_pro_wellformed"] >= 0.99
    assert r1["pro_to_anti"] >= 0.97


def test_type2_misses_are_malformed_pairs_only() -> None:
    aug = CounterfactualAugmenter(axes=("gender",))
    misses = [(p, a) for p, a in _pairs("type2") if aug.counterfactual(p) != a]
    assert all(not full_swap_pair(p, a) for p, a in misses), misses
