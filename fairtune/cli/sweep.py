"""`fairtune sweep`: a recipe over a grid of weights x seeds, or an Optuna search (library code in fairtune.sweep)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fairtune.sweep import SAMPLERS, parse_grid, parse_space, render_markdown, run_search, run_sweep


def register(subparsers) -> None:
    """Add the `sweep` subcommand."""
    p = subparsers.add_parser(
        "sweep",
        help="run a recipe over weights x seeds; frontier and model selection",
        description="Run RECIPE over every --grid combination and seed, each in its own output directory; write "
        "sweep.json, sweep.md and frontier.png in --output and select a run. Other `--field value` flags override "
        "the recipe for every run. Finished runs are not re-run. With --search optuna, a multi-objective Optuna "
        "study (task metric up, fairness gap down) samples --trials configurations from --space instead.",
    )
    p.add_argument("recipe", nargs="?", help="YAML recipe (optional when every field is passed as a flag)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="recipe field and its values")
    p.add_argument("--seeds", default="1", help="number of seeds from the recipe's `seed` up, or a list: 1,2,3")
    p.add_argument(
        "--select",
        default="dto",
        help='`dto` (distance to the utopia point, fairlib) or a constraint such as "tpr_gap_rms<=0.05" '
        "(best task metric subject to it)",
    )
    p.add_argument("--output", required=True, help="directory of the sweep (one subdirectory per run)")
    p.add_argument("--launcher", default="local", choices=("local", "accelerate"), help="in-process or subprocesses")
    p.add_argument("--num-processes", type=int, default=1, help="processes per run with --launcher accelerate")
    p.add_argument("--accelerate-config", default=None, help="accelerate config file for --launcher accelerate")
    p.add_argument("--task-metric", default=None, help="task metric (default: accuracy, f1 or exact_match)")
    p.add_argument("--fairness-metric", default=None, help="fairness gap (default: tpr_gap_rms if reported)")
    p.add_argument("--search", default="grid", choices=("grid", "optuna"), help="grid (default) or an Optuna study")
    p.add_argument("--trials", type=int, default=None, help="--search optuna: complete trials to reach in the study")
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="KEY=KIND:LOW:HIGH",
        help="--search optuna: a field's range, e.g. eo_weight=log:0.01:10, adversary_steps=int:1:5, "
        "cda=cat:one_sided,two_sided",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="--search optuna: Optuna RDB URL shared by several workers (default: sqlite in --output, resumable)",
    )
    p.add_argument("--study-name", default=None, help="--search optuna: study name (default fairtune-sweep)")
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS, help="--search optuna: tpe (default), nsga2, random")
    p.add_argument(
        "--posthoc",
        default=None,
        metavar="METHODS",
        help="post-hoc rows beside every run, e.g. thresholds,leace: per-group thresholds (cross-fitted on "
        "validation) and LEACE erasure (fitted on train, folded) applied to each trained run, in the same table "
        "and selection (grid sweeps)",
    )
    p.add_argument(
        "--posthoc-criterion",
        default="equalized_odds",
        choices=("equalized_odds", "equal_opportunity", "demographic_parity"),
        help="what the post-hoc thresholds equalise (default equalized_odds)",
    )
    p.set_defaults(func=run, accepts_overrides=True)


def preflight_data(recipe: str | None, overrides: list[str]) -> None:
    """Check the local data files once, before any run: a bad file would fail every run the same way, and is a
    bad input (exit code 2) rather than failed runs (exit code 1)."""
    from fairtune.parser import parse_config

    try:
        model_args, data_args, _ = parse_config(recipe, overrides)
    except (ValueError, OSError):
        return  # run_sweep reports configuration errors with the grid in view
    files = [f for f in (data_args.train_file, data_args.validation_file, data_args.test_file) if f]
    if data_args.dataset_name or not files or not all(Path(f).is_file() for f in files):
        return  # a Hub dataset is left to the runs; a missing file is reported after the grid is checked
    from fairtune.data import load_raw_datasets
    from fairtune.data.validation import validate_raw_datasets

    validate_raw_datasets(load_raw_datasets(data_args), data_args, model_args.task)


def run(args: argparse.Namespace) -> int:
    """CLI entry: run the sweep; 2 on a bad configuration, 1 when runs failed or nothing could be selected."""
    try:
        _check_search_flags(args)
        preflight_data(args.recipe, list(getattr(args, "overrides", []) or []))
        if args.search == "optuna":
            summary = _run_optuna(args)
        else:
            summary = run_sweep(
                args.recipe,
                parse_grid(args.grid),
                posthoc=args.posthoc,
                posthoc_criterion=args.posthoc_criterion,
                **_shared_options(args),
            )
    except (ValueError, FileNotFoundError) as err:
        print(f"fairtune sweep: {err}", file=sys.stderr)
        return 2
    out = Path(args.output)
    print(f"\n{render_markdown(summary)}")
    print(f"Wrote {out / 'sweep.json'}, {out / 'sweep.md'}, {out / 'frontier.png'}")
    sel = summary.get("selection") or {}
    failed = [r["name"] for r in summary["runs"] if r["status"] == "failed"]
    if failed:
        print(f"fairtune sweep: {len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    if sel.get("error"):
        print(f"fairtune sweep: {sel['error']}", file=sys.stderr)
        return 1
    print(f"Selected: {sel['output_dir']} ({sel['config']}, seed {sel['seed']}; {sel['reason']})")
    return 1 if failed else 0


def _check_search_flags(args: argparse.Namespace) -> None:
    """Flags of one search kind given to the other are an error before anything is loaded."""
    if args.search == "optuna":
        if args.grid:
            raise ValueError(
                "--grid and --search optuna do not mix; give the searched fields as --space KEY=KIND:LOW:HIGH."
            )
        if args.trials is None:
            raise ValueError("--search optuna needs --trials N (the number of complete trials to reach).")
        parse_space(args.space)
        if args.posthoc:
            raise ValueError(
                "--posthoc adds rows to a grid sweep; run it with --grid (the study's trials are not rows)."
            )
    elif args.space or args.trials is not None or args.storage or args.study_name:
        raise ValueError("--space/--trials/--storage/--study-name need `--search optuna`; a grid uses --grid.")


def _run_optuna(args: argparse.Namespace) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep's own lines say what each trial does
    return run_search(
        args.recipe,
        parse_space(args.space),
        args.trials,
        storage=args.storage,
        study_name=args.study_name,
        sampler=args.sampler,
        **_shared_options(args),
    )


def _shared_options(args: argparse.Namespace) -> dict:
    """The options a grid sweep and an Optuna search take alike."""
    return {
        "seeds": args.seeds,
        "overrides": list(getattr(args, "overrides", []) or []),
        "output": args.output,
        "select_criterion": args.select,
        "launcher": args.launcher,
        "num_processes": args.num_processes,
        "accelerate_config": args.accelerate_config,
        "task_metric": args.task_metric,
        "fairness_metric": args.fairness_metric,
        "log": print,
    }
