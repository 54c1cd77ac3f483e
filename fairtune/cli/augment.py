"""`fairtune augment`: write a counterfactually augmented copy of a text, classification, QA or NER file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fairtune.augment.datasets import CF_EDITS, CF_SOURCE, MODES, TASKS, normalize_mode
from fairtune.data import flatten_squad

FORMATS = (".json", ".jsonl", ".parquet", ".csv")


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
        choices=[*MODES, *(m.replace("_", "-") for m in MODES)],
        help="two_sided: originals each followed by its counterfactual; one_sided: replace in place",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the per-example choices of multi-group axes")
    p.add_argument("--lexicon", action="append", default=[], metavar="FILE", help="extra lexicon file (.json/.tsv)")
    p.add_argument("--label-names", default=None, help="NER: comma-separated tag names when ner_tags are ints")
    p.add_argument("--num-proc", type=int, default=None, help="processes for datasets.map")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"fairtune augment: error: {message}", file=sys.stderr)
    return 2


def read_rows(path: Path, task: str) -> Any:
    """Load IN as a `datasets.Dataset` (SQuAD v1 nested JSON is flattened for `--task qa`)."""
    from datasets import Dataset

    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"--input: {path} does not exist.")
    if suffix not in FORMATS:
        raise ValueError(f"--input: unknown format {suffix!r}; use one of {', '.join(FORMATS)}.")
    if suffix == ".csv" and task in ("qa", "ner"):
        raise ValueError(f"--input: csv holds only flat text rows; for --task {task} use .json, .jsonl or .parquet.")
    from fairtune.data.validation import check_data_file

    check_data_file(path, "--input")  # encoding, empty file, malformed JSON line, CSV rows: file and line named
    if suffix == ".parquet":
        return Dataset.from_parquet(str(path))
    if suffix == ".csv":
        return Dataset.from_csv(str(path))
    text = path.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            if task != "qa" or not data["data"] or "paragraphs" not in data["data"][0]:
                rows = data["data"]
            else:
                rows = flatten_squad(data)
        elif isinstance(data, list):
            rows = data
        else:
            raise ValueError("--input: JSON must be a list of rows, {'data': [rows]} or SQuAD v1 nested JSON.")
    if not rows:
        raise ValueError(f"--input: {path} has no rows.")
    return Dataset.from_list(rows)


def write_rows(ds: Any, path: Path, task: str) -> None:
    """Write OUT in the format its suffix names."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        ds.to_parquet(str(path))
        return
    rows = ds.to_list()
    if suffix == ".csv":
        import csv

        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(ds.column_names))
            writer.writeheader()
            for row in rows:
                row[CF_EDITS] = json.dumps(row[CF_EDITS])
                writer.writerow(row)
        return
    with open(path, "w", encoding="utf-8") as fh:
        if suffix == ".jsonl":
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            json.dump(rows, fh, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    """Run `fairtune augment`; returns the exit code (2 with a message naming the flag on bad input)."""
    from fairtune.augment.augmenter import CounterfactualAugmenter

    out = Path(args.output)
    if out.suffix.lower() not in FORMATS:
        return _fail(f"--output: unknown format {out.suffix!r}; use one of {', '.join(FORMATS)}.")
    if out.suffix.lower() == ".csv" and args.task in ("qa", "ner"):
        return _fail(
            f"--output: csv holds only flat text rows; for --task {args.task} write .json, .jsonl or .parquet."
        )
    if args.text_columns and args.task in ("qa", "ner"):
        return _fail(f"--text-column applies to --task text/classification; {args.task} rows have fixed columns.")
    try:
        mode = normalize_mode(args.mode)
        axes = [a.strip() for a in args.axes.split(",") if a.strip()]
        aug = CounterfactualAugmenter(axes=axes, seed=args.seed, lexicons=args.lexicon)
        ds = read_rows(Path(args.input), args.task)
        label_names = [n.strip() for n in args.label_names.split(",")] if args.label_names else None
        result = aug.augment_dataset(
            ds,
            task=args.task,
            mode=mode,
            text_columns=args.text_columns,
            label_names=label_names,
            num_proc=args.num_proc,
        )
        write_rows(result, out, args.task)
    except (ValueError, FileNotFoundError) as err:
        msg = str(err)
        if "unknown axis" in msg:
            msg = f"--axes: {msg}"
        elif msg.startswith("lexicon "):
            msg = f"--lexicon: {msg}"
        return _fail(msg)
    n_cf = sum(1 for s in result[CF_SOURCE] if s >= 0)
    print(f"fairtune augment: {len(ds)} input rows -> {len(result)} rows ({n_cf} counterfactuals, {mode}) in {out}")
    return 0
