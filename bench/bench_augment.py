"""Counterfactual augmentation throughput (words/second) against two dictionary baselines measured in the same run.

Input: the 240 XQuAD English paragraphs (real SQuAD v1.1 dev contexts, ../shared/data/squad_xquad_en), repeated to at
least 500,000 words. Rows:

- whitespace-split dict lookup: `" ".join(table.get(w, w) for w in text.split())` (no case, punctuation glued on);
- regex-token dict lookup with case handling: one `re.sub(r"\\w+", ...)` callback per token, lower/Title/UPPER kept;
- fairtune `counterfactual(text)`, gender axis (her/his resolved from context, offsets tracked), one process;
- fairtune `swap(text)` (the same plus `Edit` objects), gender axis;
- fairtune names axis (gender words + first names) and all axes;
- `datasets.Dataset.map(batched=True, num_proc=2)` through `CounterfactualAugmenter.augment_dataset` (gender).

Each row is the best of `--repeats` timed passes. Run: `python bench/bench_augment.py [--words N] [--repeats R]`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fairtune.augment import CounterfactualAugmenter, builtin_lexicon

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad_xquad_en" / "xquad.en.json"


def load_paragraphs(min_words: int) -> tuple[list[str], int]:
    """XQuAD contexts repeated until they hold at least `min_words` whitespace words."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    paras = [p["context"] for art in data["data"] for p in art["paragraphs"]]
    words = sum(len(p.split()) for p in paras)
    reps = -(-min_words // words)
    return paras * reps, words * reps


def _case(src: str, target: str) -> str:
    if src.islower():
        return target
    if src.isupper() and len(src) > 1:
        return target.upper()
    if src[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def baselines() -> dict[str, Callable[[str], str]]:
    """The two dictionary baselines over the same gender lexicon (her -> his, his -> her, as such tools do)."""
    lex = builtin_lexicon("gender")
    table = {w: t.lower() for w, t in lex.mapping.items()}
    table.update({"her": "his", "his": "her"})
    token = re.compile(r"\w+")

    def whitespace(text: str) -> str:
        return " ".join(table.get(w, w) for w in text.split())

    def regex_token(text: str) -> str:
        def repl(m: re.Match) -> str:
            w = m.group()
            t = table.get(w.lower())
            return w if t is None else _case(w, t)

        return token.sub(repl, text)

    return {"baseline: whitespace-split dict": whitespace, "baseline: regex-token dict + case": regex_token}


def _time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print the table and return {row: words per second}."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=500_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-proc", type=int, default=2)
    args = ap.parse_args(argv)
    if not DATA.is_file():
        print(f"bench_augment: {DATA} not found; it needs ../shared/data/squad_xquad_en.", file=sys.stderr)
        return {}
    texts, n_words = load_paragraphs(args.words)
    gender = CounterfactualAugmenter(axes=("gender",))
    names = CounterfactualAugmenter(axes=("gender", "names"))
    every = CounterfactualAugmenter(axes=("gender", "names", "names_race", "religion", "nationality"))
    rows: dict[str, Callable[[], object]] = {
        name: (lambda f=f: [f(t) for t in texts]) for name, f in baselines().items()
    }
    rows["fairtune counterfactual(), gender"] = lambda: [gender.counterfactual(t) for t in texts]
    rows["fairtune swap() with edits, gender"] = lambda: [gender.swap(t) for t in texts]
    rows["fairtune counterfactual(), gender+names"] = lambda: [names.counterfactual(t) for t in texts]
    rows["fairtune counterfactual(), all 5 axes"] = lambda: [every.counterfactual(t) for t in texts]

    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()
    ds = Dataset.from_dict({"text": texts, "label": [0] * len(texts)})
    rows[f"datasets.map num_proc={args.num_proc}, gender two_sided"] = lambda: gender.augment_dataset(
        ds, task="text", num_proc=args.num_proc
    )
    results = {name: n_words / _time(fn, args.repeats) for name, fn in rows.items()}
    swaps = sum(len(gender.swap(t).edits) for t in texts)
    base = results["baseline: regex-token dict + case"]
    print(f"\n{len(texts)} paragraphs, {n_words:,} words, {swaps:,} gender swaps; best of {args.repeats} runs\n")
    print(f"| {'method':<44} | {'words/s':>12} | {'vs regex baseline':>17} |")
    print(f"|{'-' * 46}|{'-' * 14}|{'-' * 19}|")
    for name, wps in results.items():
        print(f"| {name:<44} | {wps:>12,.0f} | {wps / base:>16.2f}x |")
    return results


if __name__ == "__main__":
    main()
