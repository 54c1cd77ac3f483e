"""`fairtune augment`: write a counterfactually augmented copy of a text, classification, QA or NER file.

The input is read, augmented and written a chunk of rows at a time (JSONL, Parquet and CSV are streamed; a .json
document is read whole), so files larger than memory work; `--num-proc N` augments chunks in N processes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fairtune.augment.datasets import CF_EDITS, CF_TOKEN_MAP, MODES, TASKS, normalize_mode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `augment` subcommand to the fairtune CLI."""
    p = subparsers.add_parser(
        "augment",
        help="counterfactual data augmentation (swap gender words, names, identity terms)",
        description=__doc__,
    )
    p.add_argument("--task", required=True, choices=TASKS, help="row schema: text/classification, qa (SQuAD), ner")
    p.add_argument("--input", required=True, help="input file: .json, .jsonl, .parquet (or .csv for flat text rows)")
    p.add_argument("--output", required=True, help="output file: .json, .jsonl, .parquet (or .csv for text rows)")
    p.add_argument(
        "--text-column",
        dest="text_columns",
        action="extend",
        nargs="+",
        default=None,
        metavar="COL",
        help="text column(s) to swap (text/classification; default: text or sentence)",
    )
    p.add_argument("--axes", default="gender", help="comma-separated: gender,names,names_race,religion,nationality")
    p.add_argument(
        "--mode",
        default="two_sided",
        choices=list(dict.fromkeys([*MODES, *(m.replace("_", "-") for m in MODES)])),
        help="two_sided: originals each followed by its counterfactual; one_sided: replace in place; "
        "neutralize: replace protected terms with neutral ones in place (he/she -> they, man/woman -> person)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the per-example choices of multi-group axes")
    p.add_argument("--lexicon", action="append", default=[], metavar="FILE", help="extra lexicon file (.json/.tsv)")
    p.add_argument("--label-names", default=None, help="NER: comma-separated tag names when ner_tags are ints")
    p.add_argument(
        "--num-proc", type=int, default=None, help="worker processes augmenting chunks in parallel (default: one)"
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=1000,
        help="rows read, augmented and written at a time (memory is flat in the input size)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"fairtune augment: error: {message}", file=sys.stderr)
    return 2


class _Progress:
    """A tqdm bar over the input (bytes or rows, total known); updated once per chunk."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.last = 0

    def __call__(self, done: int, total: int, unit: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit=unit, unit_scale=True, desc="fairtune augment", file=sys.stderr)
        self.bar.update(max(0, done - self.last))
        self.last = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    """Run `fairtune augment`; returns the exit code (2 with a message naming the flag on bad input)."""
    from fairtune.augment import stream
    from fairtune.augment.augmenter import CounterfactualAugmenter
    from fairtune.augment.datasets import BatchAugmenter, check_columns, default_text_columns, normalize_task

    out = Path(args.output)
    if args.text_columns and args.task in ("qa", "ner"):
        return _fail(f"--text-column applies to --task text/classification; {args.task} rows have fixed columns.")
    if args.num_proc is not None and args.num_proc < 1:
        return _fail(f"--num-proc must be at least 1, got {args.num_proc}.")
    bar = _Progress(not args.no_progress)
    try:
        stream.check_format(out, "--output", args.task)
        mode = normalize_mode(args.mode)
        task = normalize_task(args.task)
        axes = [a.strip() for a in args.axes.split(",") if a.strip()]
        aug = CounterfactualAugmenter(axes=axes, seed=args.seed, lexicons=args.lexicon)
        swapper = aug.swapper_for(mode)
        source = stream.open_source(Path(args.input), task, args.chunk_rows)
        if Path(args.input).resolve() == out.resolve():
            raise ValueError("--output is the --input file; write the augmented copy to another path.")
        label_names = [n.strip() for n in args.label_names.split(",")] if args.label_names else source.label_names

        def make_fn(columns: list[str]) -> BatchAugmenter:
            text_columns: list[str] = []
            if task in ("text", "classification"):
                text_columns = list(args.text_columns) if args.text_columns else default_text_columns(columns)
            check_columns(columns, task, text_columns)
            return BatchAugmenter(swapper, task, mode, text_columns, label_names)

        stats = stream.augment_file(
            make_fn,
            source,
            out,
            task=task,
            edits_column=CF_TOKEN_MAP if task == "ner" else CF_EDITS,
            num_proc=args.num_proc,
            progress=bar,
        )
    except (ValueError, FileNotFoundError) as err:
        msg = str(err)
        if "unknown axis" in msg or ("neutralize" in msg and "axes" in msg):
            msg = f"--axes: {msg}"
        elif msg.startswith("lexicon "):
            msg = f"--lexicon: {msg}"
        return _fail(msg)
    finally:
        bar.close()
    print(
        f"fairtune augment: {stats.rows_in} input rows -> {stats.rows_out} rows "
        f"({stats.counterfactuals} {'neutralized' if mode == 'neutralize' else 'counterfactuals'}, {mode}) in {out}"
    )
    return 0
