"""`fairtune erase`: post-hoc LEACE erasure of a group from a trained sequence classifier, token classifier (NER)
or extractive QA model, folded into its head so the result is a plain transformers model."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPORT_FILE = "erasure_report.json"
TASKS = ("classification", "ner", "qa")
#: `fairtune erase --task` -> the model kind `fairtune.evaluation.models` detects, and the Auto class that loads it
_TASK_KINDS = {
    "classification": ("classifier", "AutoModelForSequenceClassification"),
    "ner": ("token_classifier", "AutoModelForTokenClassification"),
    "qa": ("qa", "AutoModelForQuestionAnswering"),
}


def register(subparsers: Any) -> None:
    """Add the `erase` subcommand."""
    p = subparsers.add_parser(
        "erase",
        help="erase a group from a model's head input (LEACE; classification, NER, QA) and save a plain "
        "transformers model",
        description="Fit a LEACE eraser of the group on the representation feeding the task head over --data, fold "
        "it into the head and save the model to --output (no fairtune code runs at inference). --task "
        "classification (default): a sequence classifier, one pooled vector per text, reloads with "
        "AutoModelForSequenceClassification. --task ner: a token classifier, every labelled token (--tokens-column, "
        "--tags-column), AutoModelForTokenClassification. --task qa: an extractive QA model on SQuAD-style rows "
        "(question, context, answers), every token of its doc_stride windows, AutoModelForQuestionAnswering. The "
        "group comes from --group-column, or for ner/qa from lexicon terms (--group-from-lexicon gender). "
        f"{REPORT_FILE} in --output gives the held-out leakage probe (and accuracy, where the task has labels) "
        "before and after when --eval-data is set. See docs/posthoc.md.",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default="classification",
        help="what --model is: classification (sequence classifier, default), ner (token classifier) or qa "
        "(extractive question answering)",
    )
    p.add_argument("--model", required=True, help="trained model of --task (model dir or Hub id)")
    p.add_argument(
        "--data",
        required=True,
        help="fitting data (csv/json/jsonl/parquet or Hub id): text + group (ner: tokens + tags; qa: question, "
        "context, answers)",
    )
    p.add_argument(
        "--group-column",
        help="group column; several comma-separated columns erase their intersection (each combination a group). "
        "Required for classification; ner/qa take it or --group-from-lexicon",
    )
    p.add_argument(
        "--group-from-lexicon",
        metavar="AXIS",
        help="ner/qa: label each example's group by the lexicon terms it mentions (gender: female, male, both, "
        "none), as the training recipe key group_from_lexicon does",
    )
    p.add_argument("--text-column", default="text", help="classification: the text column")
    p.add_argument("--label-column", default="label", help="classification: task labels (--refit-head, report)")
    p.add_argument("--tokens-column", default="tokens", help="ner: the column of pre-split words")
    p.add_argument("--tags-column", default="ner_tags", help="ner: the column of per-word tags (the model's labels)")
    p.add_argument("--eval-data", help="held-out data for the report (same columns)")
    p.add_argument("--split", default="train", help="split of a Hub data set for --data")
    p.add_argument("--eval-split", default="test", help="split of a Hub data set for --eval-data")
    p.add_argument("--output", "--output-dir", dest="output", required=True, help="where the erased model goes")
    p.add_argument("--method", choices=("leace", "orth"), default="leace", help="eraser (docs/posthoc.md)")
    p.add_argument(
        "--refit-head",
        action="store_true",
        help="retrain the head on erased features before folding (classification, ner)",
    )
    p.add_argument("--refit-epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--doc-stride", type=int, help="qa: window overlap in tokens (default: a quarter of --max-length)")
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
        _check_flags(args)
        report, out = _erase(args) if args.task == "classification" else _erase_span(args)
    except ValueError as err:
        print(f"fairtune erase: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(f"wrote the erased model and {REPORT_FILE} to {out}")
    held = report.get("held_out", {})
    if held:
        print("\nheld-out data: metric | before | after")
        for key in ("leakage_probe", "transfer_probe", "accuracy"):
            if f"{key}_before" in held:
                print(f"  {key:16s} {held[f'{key}_before']:.4f}  {held.get(f'{key}_after', float('nan')):.4f}")
        print(f"  probe majority baseline {held['leakage_probe_majority_baseline']:.4f}")
        print(
            "  (leakage_probe: fitted on the held-out rows themselves; transfer_probe: trained on the erased --data "
            "rows, scored on the held-out ones, what the eraser guarantees)"
        )
    else:
        print("no --eval-data: pass held-out data to measure the leakage probe and accuracy before and after")
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    """The group flags fit --task (FairtuneError naming the flag and the fix), before anything is loaded."""
    from fairtune.errors import FairtuneError

    lexicon = args.group_from_lexicon
    if args.task == "classification":
        if lexicon:
            raise FairtuneError(
                "--group-from-lexicon is for --task ner and qa; a classifier's data names its group with "
                "--group-column COL"
            )
        if not args.group_column:
            raise FairtuneError("--group-column is required: name the group column of --data (e.g. gender)")
        return
    if args.group_column and lexicon:
        raise FairtuneError("pass --group-column or --group-from-lexicon, not both (the group comes from one)")
    if not args.group_column and not lexicon:
        raise FairtuneError(
            f"--task {args.task} needs the group: --group-column COL (a column of --data) or --group-from-lexicon "
            "AXIS (each example's group from the lexicon terms it mentions, e.g. gender)"
        )
    if lexicon:
        from fairtune.augment import BUILTIN_AXES

        if lexicon not in BUILTIN_AXES:
            raise FairtuneError(f"--group-from-lexicon {lexicon!r}: not a built-in axis; choose one of {BUILTIN_AXES}")
    if args.refit_head and args.task == "qa":
        raise FairtuneError(
            "--refit-head is not supported for --task qa (the QA head outputs start/end logits, not labels to refit "
            "on); drop --refit-head"
        )


def _erase(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    from fairtune.evaluation.models import load_model
    from fairtune.posthoc.erasure import text_batches

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

    held = None
    if args.eval_data:
        held = batches(_load(args, args.eval_data, args.eval_split, fit_data["names"], label2id))
    report = {"model": args.model, "data": args.data, "group_columns": args.group_column, "groups": fit_data["names"]}
    return _erase_and_save(args, loaded, batches(fit_data), len(fit_data["names"]), report, held)


def _erase_and_save(
    args: argparse.Namespace,
    loaded: Any,
    fit_batches: list[dict[str, Any]],
    num_groups: int,
    report: dict[str, Any],
    held_batches: list[dict[str, Any]] | None,
) -> tuple[dict[str, Any], Path]:
    """Fit and fold the eraser, add the fit and (with held-out batches) the probes to `report`, save model + report."""
    from fairtune.errors import FairtuneError
    from fairtune.posthoc.step import erase_model, erasure_report

    erased, fit, info = erase_model(
        loaded.model,
        fit_batches,
        num_groups,
        method=args.method,
        refit_head=args.refit_head,
        refit_epochs=args.refit_epochs,
        seed=args.seed,
    )
    report.update(info)
    if held_batches is not None:
        report["eval_data"] = args.eval_data
        try:
            report["held_out"] = erasure_report(
                loaded.model, erased, fit, held_batches, seed=args.seed, fit_batches=fit_batches
            )
        except ValueError as err:  # e.g. a held-out group with a single row: the probe cannot cross-validate
            raise FairtuneError(f"--eval-data {args.eval_data}: {err}") from None
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    erased.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    return report, out


def _check_model_kind(args: argparse.Namespace) -> str:
    """The model kind --task needs; FairtuneError when --model's architecture is another task's."""
    from transformers import AutoConfig

    from fairtune.errors import FairtuneError
    from fairtune.evaluation.models import detect_kind

    kind, auto = _TASK_KINDS[args.task]
    try:
        config = AutoConfig.from_pretrained(args.model)
    except (OSError, ValueError) as err:
        detail = " ".join(str(err).split())[:200]
        raise FairtuneError(f"--model {args.model}: not a saved model dir or Hub model ({detail})") from None
    try:
        found = detect_kind(config)
    except ValueError:  # no architectures in the config: the Auto class decides
        return kind
    if found != kind:
        arch = ", ".join(getattr(config, "architectures", None) or [])
        other = next((t for t, (k, _a) in _TASK_KINDS.items() if k == found), None)
        fix = (
            f"pass --task {other}" if other else "erase works on sequence classifiers, token classifiers and QA models"
        )
        raise FairtuneError(
            f"--model {args.model} is a {arch} ({found}); --task {args.task} needs a model that {auto} loads: {fix}"
        )
    return kind


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """`datasets`' progress bars off inside the block (restored afterwards): loading and preprocessing a small
    fitting set takes seconds, and bad input should leave one line on stderr."""
    from datasets.utils import logging as ds_logging

    was = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            ds_logging.enable_progress_bar()


def _load_span(args: argparse.Namespace, path: str, flag: str, split: str) -> Any:
    """One NER/QA data file or Hub split, its columns checked against the flags that name them."""
    from fairtune.errors import FairtuneError
    from fairtune.posthoc.task_batches import NER_COLUMNS, load_split, rename_columns

    ds = load_split(path, flag, split)
    needed: list[tuple[str, str]] = []
    if args.task == "ner":
        needed += [("--tokens-column", args.tokens_column), ("--tags-column", args.tags_column)]
    if args.group_column:
        needed += [("--group-column", c.strip()) for c in args.group_column.split(",") if c.strip()]
    for option, column in needed:
        if column not in ds.column_names:
            fix = " or derive the group with --group-from-lexicon gender" if option == "--group-column" else ""
            raise FairtuneError(
                f"{flag} {path}: no column {column!r} (columns: {ds.column_names}); set {option} to the right "
                f"column{fix}"
            )
    if args.task == "ner":
        ds = rename_columns(ds, dict(zip((args.tokens_column, args.tags_column), NER_COLUMNS)))
    return ds


def _erase_span(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """`--task ner|qa`: fit on the adapter's batches (as `fairtune train` builds them), fold, report, save."""
    from fairtune.config import DataArguments
    from fairtune.errors import FairtuneError
    from fairtune.evaluation.models import load_model
    from fairtune.posthoc.task_batches import task_batches

    kind = _check_model_kind(args)
    try:
        data_args = DataArguments(
            group_column=args.group_column,
            group_from_lexicon=args.group_from_lexicon,
            max_length=args.max_length,
            doc_stride=args.doc_stride,
        )
    except ValueError as err:  # the recipe keys' checks, told with this command's flags
        flags = {"`max_length`": "--max-length", "`doc_stride`": "--doc-stride", "doc_stride:": "--doc-stride"}
        message = str(err)
        for key, flag in flags.items():
            message = message.replace(key, flag)
        raise FairtuneError(message) from None
    with _quiet_datasets():  # a bad file gets its one line, not progress bars before it
        data = _load_span(args, args.data, "--data", args.split)
        eval_data = _load_span(args, args.eval_data, "--eval-data", args.eval_split) if args.eval_data else None
        loaded = load_model(args.model, kind=kind)
        config = loaded.model.config
        label_list = [str(config.id2label[i]) for i in range(config.num_labels)] if args.task == "ner" else None
        batches = task_batches(
            args.task,
            loaded.tokenizer,
            data,
            eval_data,
            data_args,
            label_list=label_list,
            batch_size=args.batch_size,
            where=(f"--data {args.data}", f"--eval-data {args.eval_data}"),
        )
    if len(batches.group_names) < 2:
        group_source = f"--group-column {args.group_column}" if args.group_column else "--group-from-lexicon"
        raise FairtuneError(
            f"--data {args.data}: {group_source} gives fewer than two groups ({batches.group_names}); erasure needs "
            "two or more"
        )
    report: dict[str, Any] = {
        "model": args.model,
        "data": args.data,
        "group_columns": args.group_column,
        "group_from_lexicon": args.group_from_lexicon,
        "groups": batches.group_names,
        "examples": batches.rows["fit"],
        "features": batches.features["fit"],
        "example_group_counts": batches.group_counts,
    }
    held = (batches.held_out or []) if eval_data is not None else None
    return _erase_and_save(args, loaded, batches.fit, len(batches.group_names), report, held)
