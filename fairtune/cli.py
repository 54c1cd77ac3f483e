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
    "fairtune.commands.train",
    "fairtune.commands.demo",
    "fairtune.augment.cli",
    "fairtune.evaluation.cli",
    "fairtune.hub",
    "fairtune.sweep",
)


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
    # `train` takes free-form `--field value` overrides, so it parses its own tail.
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "accepts_overrides", False):
        args.overrides = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
