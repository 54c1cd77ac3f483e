"""`fairtune erase`: post-hoc LEACE erasure of a group from a trained classifier, folded into a plain model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPORT_FILE = "erasure_report.json"


def register(subparsers: Any) -> None:
    """Add the `erase` subcommand."""
    p = subparsers.add_parser(
        "erase",
        help="erase a group from a classifier's representation (LEACE) and save a plain transformers model",
        description="Fit a LEACE eraser of --group-column on the representation feeding the classifier head over "
        "--data, fold it into the head and save the model to --output (AutoModelForSequenceClassification loads it; "
        f"no fairtune code runs at inference). {REPORT_FILE} in --output gives the held-out leakage probe and "
        "accuracy before and after when --eval-data is set. See docs/posthoc.md.",
    )
    p.add_argument("--model", required=True, help="trained sequence classifier (model dir or Hub id)")
    p.add_argument("--data", required=True, help="fitting data (csv/json/jsonl/parquet or Hub id): text + group")
    p.add_argument(
        "--group-column",
        required=True,
        help="group column; several comma-separated columns erase their intersection (each combination a group)",
    )
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label", help="task labels (for --refit-head and the report)")
    p.add_argument("--eval-data", help="held-out data for the report (same columns)")
    p.add_argument("--split", default="train", help="split of a Hub data set for --data")
    p.add_argument("--eval-split", default="test", help="split of a Hub data set for --eval-data")
    p.add_argument("--output", "--output-dir", dest="output", required=True, help="where the erased model goes")
    p.add_argument("--method", choices=("leace", "orth"), default="leace", help="eraser (docs/posthoc.md)")
    p.add_argument("--refit-head", action="store_true", help="retrain the head on erased features before folding")
    p.add_argument("--refit-epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=erase_command)


def _load(args: argparse.Namespace, path: str, split: str, names: list[str] | None, label2id: Any) -> dict[str, Any]:
    """Texts, group ids (named in `names`, extended for the fitting data) and labels of one table."""
    import numpy as np

    from fairtune.evaluation.tables import encode_labels, load_table, require_columns
    from fairtune.posthoc.erasure import combine_groups

    df = load_table(path, split)
    group_columns = [c.strip() for c in args.group_column.split(",") if c.strip()]
    require_columns(df, [args.text_column, *group_columns], path, "Set --text-column/--group-column.")
    ids, found = combine_groups([df[c].tolist() for c in group_columns])
    if names is not None:  # map the held-out data's combined values onto the fitting data's ids
        lookup = {n: i for i, n in enumerate(names)}
        ids = np.asarray([lookup.get(found[i], -1) if i >= 0 else -1 for i in ids], dtype=int)
        found = names
    labels = None
    if args.label_column in df.columns:
        labels = encode_labels(df[args.label_column], label2id)
    return {"texts": df[args.text_column].astype(str).tolist(), "groups": ids, "names": found, "labels": labels}


def erase_command(args: argparse.Namespace) -> int:
    """Run `fairtune erase`."""
    try:
        report, out = _erase(args)
    except ValueError as err:
        print(f"fairtune erase: {err}", file=sys.stderr)
        return 2
    print(f"wrote the erased model and {REPORT_FILE} to {out}")
    held = report.get("held_out", {})
    if held:
        print("\nheld-out data: metric | before | after")
        for key in ("leakage_probe", "accuracy"):
            if f"{key}_before" in held:
                print(f"  {key:16s} {held[f'{key}_before']:.4f}  {held.get(f'{key}_after', float('nan')):.4f}")
        print(f"  probe majority baseline {held['leakage_probe_majority_baseline']:.4f}")
    else:
        print("no --eval-data: pass held-out data to measure the leakage probe and accuracy before and after")
    return 0


def _erase(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    from fairtune.evaluation.models import load_model
    from fairtune.posthoc.erasure import text_batches
    from fairtune.posthoc.step import erase_model, erasure_report

    loaded = load_model(args.model, kind="classifier")
    label2id = getattr(loaded.model.config, "label2id", None)
    fit_data = _load(args, args.data, args.split, None, label2id)
    if len(fit_data["names"]) < 2:
        raise ValueError(f"--data {args.data}: column(s) {args.group_column} hold fewer than two groups")
    if args.refit_head and fit_data["labels"] is None:
        raise ValueError(f"--refit-head needs task labels: --data {args.data} has no column {args.label_column!r}")

    def batches(d: dict[str, Any]) -> list[dict[str, Any]]:
        return list(
            text_batches(
                loaded.tokenizer,
                d["texts"],
                d["groups"],
                labels=d["labels"],
                batch_size=args.batch_size,
                max_length=args.max_length,
            )
        )

    train = batches(fit_data)
    erased, fit, info = erase_model(
        loaded.model,
        train,
        len(fit_data["names"]),
        method=args.method,
        refit_head=args.refit_head,
        refit_epochs=args.refit_epochs,
        seed=args.seed,
    )
    report: dict[str, Any] = {
        "model": args.model,
        "data": args.data,
        "group_columns": args.group_column,
        "groups": fit_data["names"],
        **info,
    }
    if args.eval_data:
        held = _load(args, args.eval_data, args.eval_split, fit_data["names"], label2id)
        report["eval_data"] = args.eval_data
        report["held_out"] = erasure_report(loaded.model, erased, fit, batches(held), seed=args.seed)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    erased.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    return report, out
