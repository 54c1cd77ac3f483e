"""`fairtune train RECIPE.yaml [--field value ...]`."""

from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers) -> None:
    """Add the `train` subcommand."""
    p = subparsers.add_parser(
        "train",
        help="fine-tune with fairness objectives",
        description="Train from a flat YAML recipe; `--field value` flags override it (any fairtune or "
        "TrainingArguments field). Also: `accelerate launch -m fairtune train RECIPE.yaml`.",
    )
    p.add_argument("recipe", nargs="?", help="YAML recipe (optional when every field is passed as a flag)")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    """Parse the recipe and overrides, then run training."""
    from fairtune.parser import parse_config
    from fairtune.pipeline import run_training

    try:
        model_args, data_args, training_args = parse_config(args.recipe, getattr(args, "overrides", []))
    except (ValueError, FileNotFoundError) as err:
        print(f"fairtune train: {err}", file=sys.stderr)
        return 2
    command = " ".join(shlex.quote(a) for a in ["fairtune", "train", *sys.argv[2:]]) if len(sys.argv) > 2 else None
    run_training(model_args, data_args, training_args, command=command)
    return 0
