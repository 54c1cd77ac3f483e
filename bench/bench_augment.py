"""Counterfactual augmentation throughput (words/second) and peak memory, against a regex-dictionary baseline
measured in the same run, with the output checked byte for byte against the previous implementation.

Input: the 240 XQuAD English paragraphs (real SQuAD v1.1 dev contexts, ../shared/data/squad_xquad_en), repeated to at
least `--words` words (default 500,000). Rows:

- baselines: whitespace-split dict lookup, and one `re.sub(r"\\w+", ...)` callback per token with lower/Title/UPPER
  kept (the "regex-dictionary baseline" every ratio is taken against);
- `v0`: the previous implementation (`bench/_swapper_v0.py`, a frozen copy: one trie regex over the lower-cased text);
- fairtune `counterfactual(text)` with the Aho-Corasick matcher (default) and with the regex alternation
  (`matcher="regex"`), gender only and all five axes; `swap(text)` (the same plus `Edit` objects); the engine in use
  is the one `fairtune.augment.swapper` picks (the Cython-compiled `_engine_c` where it was built; the header line
  names it), and all five axes is also timed on the Python file itself (`_engine.py`) without the C accelerators:
  what an install without a C compiler runs;
- parallelism on `--parallel-scale` times the corpus (default 100x, 50M words: corpus scale, where a pool's fixed
  costs are paid once; 40x was the default before and is still worth a run): `fairtune augment`'s chunked loop
  (`stream.augment_file`, JSONL in and out) and `Dataset.map` (`augment_dataset`), one process vs `--num-proc`;
- streaming: `fairtune augment` (a subprocess each, JSONL, gender, two_sided) on 1x/10x/100x the corpus, peak RSS.
- the machine's parallel ceiling: a pure-Python CPU loop in `--num-proc` fork processes vs one (the most any
  parallel row can reach here; on a shared VM the second core is not always a whole core), and `Dataset.map`'s
  fixed cost (an 8-row map with `num_proc=2`: its pool, progress queue and shard files), which a parallel map pays
  once whatever the corpus size.

Before timing, every paragraph's `swap()` output (text and edits) of the new engine (both matchers, both engines) is
asserted equal to v0's, for gender, gender+names and all five axes. Each timed row is the best of `--repeats` passes; its peak
memory is the tracemalloc peak of one more pass (Python allocations). Rows are timed round-robin (each round times
every row once), so a change of load during the run shifts all rows alike. The load average is printed: other
processes on the machine change the parallel rows most.

Run: `python bench/bench_augment.py [--words N] [--repeats R] [--num-proc 2] [--scales 1,10,100]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from fairtune.augment import CounterfactualAugmenter, builtin_lexicon
from fairtune.augment import _engine as python_engine
from fairtune.augment import swapper as swapper_face
from fairtune.augment.lexicon import resolve_lexicons
from fairtune.augment.swapper import Swapper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _swapper_v0 import Swapper as SwapperV0  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad_xquad_en" / "xquad.en.json"
ALL_AXES = ("gender", "names", "names_race", "religion", "nationality")


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


def _round_robin(rows: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best seconds of each row over `repeats` rounds, every round timing every row once (so a change of machine
    load during the run shifts all rows alike instead of favouring the rows timed in a quiet moment)."""
    best = {name: float("inf") for name in rows}
    for _ in range(repeats):
        for name, fn in rows.items():
            best[name] = min(best[name], _time(fn, 1))
    return best


def _peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _as_tuple(res) -> tuple:
    return res.text, [(e.src_start, e.src_end, e.tgt_start, e.tgt_end, e.old, e.new, e.axis) for e in res.edits]


def check_equal_to_v0(texts: list[str]) -> int:
    """Assert the new engine (both matchers) gives v0's output on every paragraph; returns the edits compared."""
    n = 0
    for axes in (("gender",), ("gender", "names"), ALL_AXES):
        lex = resolve_lexicons(axes)
        old, new, rx = SwapperV0(lex, seed=0), Swapper(lex, seed=0), Swapper(lex, seed=0, matcher="regex")
        py = python_engine.Swapper(lex, seed=0)  # the same as `new` where the compiled engine is not in use
        for t in dict.fromkeys(texts):
            a, b, c, d = (_as_tuple(sw.swap(t)) for sw in (old, new, rx, py))
            if not a == b == c == d:
                raise AssertionError(f"axes {axes}: output differs from v0 on paragraph {t[:60]!r}")
            if old.counterfactual(t) != new.counterfactual(t):
                raise AssertionError(f"axes {axes}: counterfactual() differs from v0 on {t[:60]!r}")
            n += len(a[1])
    return n


def pickling_costs() -> dict[str, dict[str, float]]:
    """What `Dataset.map(num_proc=N)` pays per callable: dill size/dumps/loads and datasets' `Hasher.hash`, for a
    `BatchAugmenter` over all five axes holding the v0 swapper vs the current one (the cause of the old slowdown)."""
    import dill
    from datasets.fingerprint import Hasher

    from fairtune.augment.datasets import BatchAugmenter

    lex = resolve_lexicons(ALL_AXES)
    out = {}
    for name, sw in (("v0", SwapperV0(lex)), ("current", Swapper(lex))):
        fn = BatchAugmenter.__new__(BatchAugmenter)  # the v0 swapper lacks the attributes __init__ now reads
        fn.swapper, fn.task, fn.mode, fn.text_columns, fn.label_names, fn.label_ids = (
            sw,
            "text",
            "two_sided",
            [],
            None,
            {},
        )
        t0 = time.perf_counter()
        blob = dill.dumps(fn)
        t1 = time.perf_counter()
        dill.loads(blob)
        t2 = time.perf_counter()
        Hasher.hash(fn)
        t3 = time.perf_counter()
        out[name] = {"kib": len(blob) / 1024, "dumps_ms": (t1 - t0) * 1e3, "loads_ms": (t2 - t1) * 1e3}
        out[name]["hash_ms"] = (t3 - t2) * 1e3
    return out


def _write_jsonl(path: Path, texts: list[str], reps: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        i = 0
        for _ in range(reps):
            for t in texts:
                fh.write(json.dumps({"id": i, "text": t, "label": i % 2}, ensure_ascii=False) + "\n")
                i += 1


def _cli_peak(inp: Path, out: Path, num_proc: int = 1) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `fairtune augment` subprocess (measured by a wrapper process)."""
    exe = Path(sys.executable).with_name("fairtune")
    head = (
        [str(exe)]
        if exe.is_file()
        else [sys.executable, "-c", "import sys; from fairtune.cli import main; sys.exit(main())"]
    )
    cmd = [*head, "augment", "--task", "text", "--input", str(inp)]
    cmd += ["--output", str(out), "--no-progress", "--num-proc", str(num_proc)]
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter(); subprocess.run(json.loads(sys.argv[1]), check=True, stdout=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    res = subprocess.run([sys.executable, "-c", wrapper, json.dumps(cmd)], capture_output=True, text=True, check=True)
    secs, kb = res.stdout.split()
    return float(secs), int(kb) / 1024


def _cpu_loop(n: int = 4_000_000) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def parallel_ceiling(num_proc: int, repeats: int) -> float:
    """What `num_proc` fork processes give over one on this machine now: a pure-Python CPU loop, no I/O, no pickling
    (the most any parallel row can reach; on a shared VM the second core is not always a whole core)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    one = _round_robin({"serial": lambda: [_cpu_loop() for _ in range(num_proc)]}, repeats)["serial"]
    with ctx.Pool(num_proc) as pool:
        many = _round_robin({"pool": lambda: pool.map(_cpu_loop, [4_000_000] * num_proc)}, repeats)["pool"]
    return one / many


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Run the benchmark, print the table and return {row: {"wps": words/s, "mb": peak MiB, ...}}."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", type=int, default=500_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument(
        "--parallel-scale",
        type=int,
        default=100,
        help="corpus multiple for the num_proc rows (default 100: 50M words)",
    )
    ap.add_argument("--scales", default="1,10,100", help="corpus multiples for the streaming rows ('' to skip)")
    args = ap.parse_args(argv)
    if not DATA.is_file():
        print(f"bench_augment: {DATA} not found; it needs ../shared/data/squad_xquad_en.", file=sys.stderr)
        return {}
    if swapper_face.engine is not python_engine:  # the Python file is then timed as it runs without a C compiler
        python_engine._c_derangement = python_engine._c_split_matches = None
    load0 = os.getloadavg()
    texts, n_words = load_paragraphs(args.words)
    compared = check_equal_to_v0(texts)

    gender_lex, all_lex = resolve_lexicons(("gender",)), resolve_lexicons(ALL_AXES)
    engines = {
        "v0 (previous) counterfactual(), gender": SwapperV0(gender_lex),
        "fairtune counterfactual(), gender": Swapper(gender_lex),
        "  same, regex alternation matcher": Swapper(gender_lex, matcher="regex"),
        "v0 (previous) counterfactual(), all 5 axes": SwapperV0(all_lex),
        "fairtune counterfactual(), all 5 axes": Swapper(all_lex),
        "  same, regex alternation matcher ": Swapper(all_lex, matcher="regex"),
    }
    if swapper_face.engine is not python_engine:  # what an install without a C compiler runs (no C accelerators)
        engines["  same, no compiled code (Python engine, no C)"] = python_engine.Swapper(all_lex)
    rows: dict[str, Callable[[], object]] = {
        name: (lambda f=f: [f(t) for t in texts]) for name, f in baselines().items()
    }
    for name, eng in engines.items():
        rows[name] = lambda eng=eng: [eng.counterfactual(t) for t in texts]
    gender_sw = engines["fairtune counterfactual(), gender"]
    rows["fairtune swap() with edits, gender"] = lambda: [gender_sw.swap(t) for t in texts]
    names_sw = Swapper(resolve_lexicons(("gender", "names")))
    rows["fairtune counterfactual(), gender+names"] = lambda: [names_sw.counterfactual(t) for t in texts]
    results: dict[str, dict] = {}
    best = _round_robin(rows, args.repeats)
    for name, fn in rows.items():
        results[name] = {"wps": n_words / best[name], "mb": _peak_mb(fn), "words": n_words}

    # -- parallelism ------------------------------------------------------------------------------------------
    import datasets
    from datasets import Dataset, disable_progress_bars, load_from_disk

    from fairtune.augment import stream
    from fairtune.augment.datasets import CF_EDITS, BatchAugmenter

    disable_progress_bars()
    big_texts = texts * args.parallel_scale
    big_words = n_words * args.parallel_scale
    gender = CounterfactualAugmenter(axes=("gender",))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "par.jsonl"
        _write_jsonl(src, texts, args.parallel_scale)
        par_rows: dict[str, Callable[[], object]] = {}
        for npc in (1, args.num_proc):
            par_rows[f"fairtune augment loop, num_proc={npc} ({args.parallel_scale}x)"] = lambda npc=npc: (
                stream.augment_file(
                    lambda cols: BatchAugmenter(gender.swapper, "text", "two_sided", ["text"]),
                    stream.open_source(src, "text"),
                    tmp / "par_out.jsonl",
                    task="text",
                    edits_column=CF_EDITS,
                    num_proc=npc,
                )
            )
        ds = Dataset.from_dict({"text": big_texts, "label": [0] * len(big_texts)})
        # What `load_dataset` and `fairtune train` give: an Arrow file, memory-mapped, so workers receive a file
        # reference; an in-memory table (`Dataset.from_dict`) is pickled to every worker instead.
        ds.save_to_disk(str(tmp / "par_ds"))
        on_disk = load_from_disk(str(tmp / "par_ds"))
        for npc in (None, args.num_proc):
            par_rows[f"Dataset.map, num_proc={npc or 1} ({args.parallel_scale}x)"] = lambda npc=npc: (
                gender.augment_dataset(on_disk, task="text", num_proc=npc)
            )
        for npc in (None, args.num_proc):
            par_rows[f"Dataset.map in memory, num_proc={npc or 1} ({args.parallel_scale}x)"] = lambda npc=npc: (
                gender.augment_dataset(ds, task="text", num_proc=npc)
            )
        caching = datasets.is_caching_enabled()
        datasets.disable_caching()  # every round maps again instead of loading the last round's cache file
        try:
            for name, secs in _round_robin(par_rows, max(1, args.repeats - 1)).items():
                results[name] = {"wps": big_words / secs}
            # What `Dataset.map` costs whatever the data (its pool, progress queue, shard files and concatenation):
            # an 8-row map. The parallel rows pay it once; it is why they scale better on a bigger corpus.
            tiny = on_disk.select(range(8))
            fixed = _round_robin(
                {npc: (lambda npc=npc: gender.augment_dataset(tiny, task="text", num_proc=npc)) for npc in (None, 2)},
                args.repeats,
            )
        finally:
            if caching:
                datasets.enable_caching()

        # -- streaming: peak RSS of the CLI at growing corpus sizes ---------------------------------------------
        for scale in [int(s) for s in args.scales.split(",") if s.strip()]:
            inp = tmp / f"stream{scale}.jsonl"
            _write_jsonl(inp, texts, scale)
            secs, mb = _cli_peak(inp, tmp / f"stream{scale}_out.jsonl")
            results[f"fairtune augment CLI, {scale}x corpus (subprocess)"] = {
                "wps": n_words * scale / secs,
                "rss": mb,
                "words": n_words * scale,
            }
            inp.unlink()
            (tmp / f"stream{scale}_out.jsonl").unlink()

    ceiling = parallel_ceiling(args.num_proc, args.repeats)
    base = results["baseline: regex-token dict + case"]["wps"]
    load1 = os.getloadavg()
    print(
        f"\n{len(texts)} paragraphs, {n_words:,} words; best of {args.repeats} runs; output equal to v0 on every "
        f"paragraph ({compared:,} edits compared); load average {load0[0]:.2f} before, {load1[0]:.2f} after, "
        f"{os.cpu_count()} CPUs; swapping engine: {swapper_face.engine.__name__} ({swapper_face.engine_reason})\n"
    )
    print(f"| {'method':<52} | {'words/s':>12} | {'vs regex baseline':>17} | {'peak MiB':>9} |")
    print(f"|{'-' * 54}|{'-' * 14}|{'-' * 19}|{'-' * 11}|")
    for name, r in results.items():
        mem = f"{r['rss']:.0f} RSS" if "rss" in r else (f"{r['mb']:.1f}" if "mb" in r else "")
        print(f"| {name:<52} | {r['wps']:>12,.0f} | {r['wps'] / base:>16.2f}x | {mem:>9} |")
    par1 = results[f"fairtune augment loop, num_proc=1 ({args.parallel_scale}x)"]["wps"]
    parn = results[f"fairtune augment loop, num_proc={args.num_proc} ({args.parallel_scale}x)"]["wps"]
    map1 = results[f"Dataset.map, num_proc=1 ({args.parallel_scale}x)"]["wps"]
    mapn = results[f"Dataset.map, num_proc={args.num_proc} ({args.parallel_scale}x)"]["wps"]
    print(
        f"\nall 5 axes {results['fairtune counterfactual(), all 5 axes']['wps'] / base:.2f}x baseline (target 2x); "
        f"gender {results['fairtune counterfactual(), gender']['wps'] / base:.2f}x (target 2.5x); "
        f"num_proc={args.num_proc}: augment loop {parn / par1:.2f}x, Dataset.map {mapn / map1:.2f}x one process "
        f"(target 1.7x); a pure-Python CPU loop in {args.num_proc} processes: {ceiling:.2f}x one (this machine's ceiling)"
    )
    map_secs = big_words / mapn
    print(
        f"Dataset.map's fixed cost (an 8-row map): {fixed[2]:.3f} s with num_proc=2, {fixed[None]:.3f} s in one "
        f"process; {fixed[2] / map_secs:.0%} of the num_proc={args.num_proc} map above ({map_secs:.2f} s)"
    )
    for name, c in pickling_costs().items():
        print(
            f"pickled BatchAugmenter (all 5 axes, {name}): {c['kib']:.0f} KiB, dill dumps {c['dumps_ms']:.0f} ms, "
            f"loads {c['loads_ms']:.0f} ms, datasets Hasher.hash {c['hash_ms']:.0f} ms"
        )
    rss = {k: r["rss"] for k, r in results.items() if "rss" in r}
    if rss:
        first = next(iter(rss.values()))
        print(
            "streaming peak RSS vs 1x: "
            + ", ".join(f"{k.split(', ')[1].split()[0]} {v / first:.2f}x" for k, v in rss.items())
        )
    return results


if __name__ == "__main__":
    main()
