"""`fairtune evaluate` (bias suites -> results.json, report.md, plots) and `fairtune thresholds` (post-hoc thresholds)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fairtune.evaluation.suites import SUITES


def register(subparsers: Any) -> None:
    """Add the `evaluate` and `thresholds` subcommands."""
    p = subparsers.add_parser(
        "evaluate",
        help="measure bias with benchmark suites and write results.json, report.md and plots",
        description="fairtune evaluate RECIPE.yaml, or fairtune evaluate --suite NAME --model DIR --output DIR. "
        f"Suites: {', '.join(SUITES)}.",
    )
    p.add_argument("recipe", nargs="?", help="evaluation recipe YAML (flags override its values)")
    p.add_argument("--suite", action="append", dest="suites", help="suite to run (repeat or comma-separate)")
    p.add_argument("--model", help="model dir or Hub id")
    p.add_argument("--model-kind", choices=("masked_lm", "causal_lm", "classifier", "qa", "token_classifier"))
    p.add_argument("--data", help="data file, folder or Hub id for the suites")
    p.add_argument("--predictions", help="predictions file (json/jsonl/csv with prediction, label, group) for `group`")
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--group-column")
    p.add_argument("--max-examples", type=int)
    p.add_argument("--baseline", help="model to compare against, or a folder with an earlier results.json")
    p.add_argument("--output", "--output-dir", dest="output_dir", help="output folder")
    p.add_argument("--n-bootstrap", type=int, help="bootstrap resamples for intervals (default 1000; 0 = none)")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="hide progress bars")
    p.set_defaults(func=evaluate_command)

    t = subparsers.add_parser(
        "thresholds",
        help="fit per-group decision thresholds (Hardt et al. 2016) and store them with the model",
        description="Fit per-group decision rules on validation data and save fairtune_thresholds.json in the model "
        "dir: one threshold per group for a binary classifier (or, with --randomized, Hardt et al.'s mix of two), "
        "per-class score offsets per group for a multiclass one. A plain transformers pipeline ignores them; "
        "fairtune evaluate and fairtune.posthoc.thresholds.predict_with_thresholds apply them.",
    )
    t.add_argument("--model", required=True, help="local model dir (thresholds are written into it)")
    t.add_argument("--data", required=True, help="validation data with text, label and group columns")
    t.add_argument(
        "--criterion",
        choices=("equal_opportunity", "equalized_odds", "demographic_parity"),
        default="equal_opportunity",
        help="rates to equalise across groups: TPR, TPR and FPR, or selection rate (per class when multiclass)",
    )
    t.add_argument(
        "--randomized",
        action="store_true",
        help="binary: mix two thresholds per group for exact parity in expectation (seeded; the seed is stored)",
    )
    t.add_argument("--seed", type=int, default=0, help="seed of the randomized predictions and the group probe")
    t.add_argument(
        "--infer-groups",
        action="store_true",
        help="also fit a probe predicting the group from the model's representation, so the thresholds apply "
        "without the group at inference; reports the probe's accuracy next to the fairness it buys",
    )
    t.add_argument("--split", default="validation", help="split of a Hub data set")
    t.add_argument("--text-column", default="text")
    t.add_argument("--label-column", default="label")
    t.add_argument("--group-column", default="group")
    t.add_argument("--test-data", help="held-out data to report the effect on (same columns)")
    t.add_argument("--batch-size", type=int, default=32)
    t.set_defaults(func=thresholds_command)


def check_local_file(path: str | None, flag: str) -> None:
    """A local data file named by a flag is checked at the door (missing, encoding, JSON lines, CSV rows); Hub ids
    and folders pass through."""
    from pathlib import Path

    from fairtune.data.validation import check_data_file

    if path and (Path(path).is_file() or Path(path).suffix.lower() in (".csv", ".json", ".jsonl", ".parquet")):
        check_data_file(path, flag)


def check_local_model(path: str | None, flag: str) -> None:
    """A model named by a path (not a Hub id `org/name`) must exist."""
    from pathlib import Path

    from fairtune.errors import FairtuneError

    if path and path.startswith((".", "/", "~")) and not Path(path).expanduser().exists():
        raise FairtuneError(f"{flag}: {path!r} does not exist; pass a model dir or a Hub id (org/name).")


def check_thresholds_inputs(args: argparse.Namespace) -> None:
    """Before a model is loaded: `--model` is a local dir (the thresholds are saved into it), data files are sane."""
    from pathlib import Path

    from fairtune.errors import FairtuneError

    if not Path(args.model).is_dir():
        raise FairtuneError(f"--model: {args.model!r} is not a local model dir (the thresholds are saved into it).")
    check_local_file(args.data, "--data")
    check_local_file(getattr(args, "test_data", None), "--test-data")


def evaluate_command(args: argparse.Namespace) -> int:
    """Run `fairtune evaluate`."""
    from fairtune.evaluation.recipe import build_config, load_recipe
    from fairtune.evaluation.runner import evaluate

    check_local_file(args.predictions, "--predictions")
    check_local_file(args.data, "--data")
    check_local_model(args.model, "--model")

    recipe = load_recipe(args.recipe) if args.recipe else {}
    overrides = {k: v for k, v in vars(args).items() if k not in ("func", "recipe", "command")}
    try:
        config = build_config(recipe, overrides)
    except ValueError as err:
        print(f"fairtune evaluate: {err}", file=sys.stderr)
        return 2
    payload = evaluate(config)
    shown = {k: payload[k] for s in payload["suites"] for k in payload["details"][s]["metrics"]}
    print(json.dumps(shown, indent=2))
    print(f"wrote {config.output_dir}/results.json and report.md")
    return 0


def thresholds_command(args: argparse.Namespace) -> int:
    """Run `fairtune thresholds`: fit on --data, save with the model, report the effect on --test-data."""
    check_thresholds_inputs(args)
    try:
        effect_rows, path = _fit_and_store_thresholds(args)
    except ValueError as err:
        print(f"fairtune thresholds: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    for name, e in effect_rows.items():
        columns = [c for c in ("argmax", "thresholds", "inferred_groups") if c in e]
        print(f"\n{name}: metric | " + " | ".join(columns))
        for k in e["argmax"]:
            print(f"  {k:32s} " + "  ".join(f"{e[c][k]:.4f}" for c in columns))
        if "group_probe_accuracy" in e:
            print(f"  {'group_probe_accuracy':32s} {e['group_probe_accuracy']:.4f}")
    print(
        "\nNote: a plain transformers pipeline ignores these thresholds; use "
        "fairtune.posthoc.thresholds.predict_with_thresholds."
    )
    return 0


def _fit_and_store_thresholds(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Fit, measure (argmax vs thresholds vs inferred groups) and save; ValueError on bad input."""
    import numpy as np

    from fairtune.evaluation.models import load_model
    from fairtune.evaluation.predict import classifier_probs
    from fairtune.evaluation.tables import encode_labels, load_table, require_columns
    from fairtune.metrics.group import group_fairness_metrics
    from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds, save_thresholds

    loaded = load_model(args.model, kind="classifier")
    num_labels = int(loaded.model.config.num_labels)
    if num_labels < 2:
        raise ValueError(f"--model {args.model}: per-group thresholds need a classifier with 2+ labels")

    def scored(path: str):
        df = load_table(path, args.split)
        require_columns(
            df,
            [args.text_column, args.label_column, args.group_column],
            path,
            "Set --text-column/--label-column/--group-column.",
        )
        texts = df[args.text_column].astype(str).tolist()
        probs = classifier_probs(loaded.model, loaded.tokenizer, texts, batch_size=args.batch_size, progress=True)
        y = encode_labels(df[args.label_column], getattr(loaded.model.config, "label2id", None))
        return texts, probs, y, np.asarray(df[args.group_column].tolist(), dtype=object)

    texts, probs, y, groups = scored(args.data)
    thresholds = fit_thresholds(probs, y, groups, args.criterion, randomized=args.randomized, seed=args.seed)
    thresholds["group_column"] = args.group_column
    probe = None
    if args.infer_groups:
        from fairtune.posthoc.erasure import head_inputs
        from fairtune.posthoc.group_probe import fit_group_probe

        known = np.asarray([g is not None and str(g) != "" for g in groups])
        reps = head_inputs(loaded.model, loaded.tokenizer, texts, args.batch_size)
        probe = fit_group_probe(reps[known], groups[known], seed=args.seed)
        thresholds["group_probe"] = probe
    keys = (
        "accuracy",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "demographic_parity_difference",
        "tpr_gap_rms",
    )
    labels = list(range(num_labels))
    effect: dict[str, Any] = {}
    sets = {"validation": (texts, probs, y, groups), **({"test": scored(args.test_data)} if args.test_data else {})}
    for name, (tx, p, yy, g) in sets.items():
        before = group_fairness_metrics(yy, p.argmax(1), list(g), labels=labels)
        after = group_fairness_metrics(yy, apply_thresholds(p, g, thresholds), list(g), labels=labels)
        effect[name] = {"argmax": {k: before[k] for k in keys}, "thresholds": {k: after[k] for k in keys}}
        if probe is not None:
            from fairtune.posthoc.erasure import head_inputs
            from fairtune.posthoc.group_probe import predict_group

            guessed = predict_group(probe, head_inputs(loaded.model, loaded.tokenizer, tx, args.batch_size))
            inferred = group_fairness_metrics(yy, apply_thresholds(p, guessed, thresholds), list(g), labels=labels)
            effect[name]["inferred_groups"] = {k: inferred[k] for k in keys}
            known = np.asarray([v is not None and str(v) != "" for v in g])
            effect[name]["group_probe_accuracy"] = float(np.mean(guessed[known].astype(str) == g[known].astype(str)))
    thresholds["effect"] = effect
    return effect, save_thresholds(args.model, thresholds)
