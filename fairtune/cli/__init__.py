"""`fairtune` command line: train | augment | evaluate | thresholds | card | push | sweep | demo.

Each subcommand lives in the module that owns the job and exposes `register(subparsers)`, which adds its parser
and sets `func` (called with the parsed namespace, returns an exit code). This file only dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, attribute) pairs; each module's `register(subparsers)` adds one or more subcommands.
_COMMAND_MODULES = (
    "fairtune.cli.train",
    "fairtune.cli.demo",
    "fairtune.cli.augment",
    "fairtune.cli.evaluate",
    "fairtune.cli.hub",
    "fairtune.cli.sweep",
)


def _train_split(tail: list[str]) -> tuple[list[str], list[str]]:
    return [], tail


def _sweep_split(tail: list[str]) -> tuple[list[str], list[str]]:
    """`sweep` has its own flags (--grid, --seeds, --select, --output); everything else is a recipe override."""
    own = {
        "--grid",
        "--seeds",
        "--select",
        "--output",
        "--launcher",
        "--num-processes",
        "--accelerate-config",
        "--task-metric",
        "--fairness-metric",
    }
    known, rest, i = [], [], 0
    while i < len(tail):
        tok = tail[i]
        name = tok.split("=", 1)[0]
        if name in own:
            known.append(tok)
            if "=" not in tok and i + 1 < len(tail):
                known.append(tail[i + 1])
                i += 1
        else:
            rest.append(tok)
        i += 1
    return known, rest


OVERRIDE_COMMANDS = {"train": _train_split, "sweep": _sweep_split}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="fairtune", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # a subcommand whose module is not part of this build
            if err.name is None or not name.startswith(err.name):
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fairtune` console script and of `python -m fairtune`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 2
    # `train` (and `sweep`) take free-form `--field value` overrides after an optional recipe path.
    if argv[0] in OVERRIDE_COMMANDS and not {"-h", "--help"} & set(argv[1:2]):
        head = argv[:2] if len(argv) > 1 and not argv[1].startswith("-") else argv[:1]
        tail = argv[len(head) :]
        known, rest = OVERRIDE_COMMANDS[argv[0]](tail)
        args = parser.parse_args(head + known)
        args.overrides = rest
    else:
        args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
