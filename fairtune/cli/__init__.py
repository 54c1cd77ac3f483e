"""`fairtune` command line: train | augment | evaluate | thresholds | erase | card | push | sweep | monitor | demo.

Each subcommand lives in the module that owns the job and exposes `register(subparsers)`, which adds its parser
and sets `func` (called with the parsed namespace, returns an exit code). This file only dispatches: it imports
the one module a command needs (so `fairtune --help` answers without importing torch), and turns every user error
(`FairtuneError`, `ValueError`, `OSError` such as a missing file) into one line on stderr, `fairtune <command>:
<message>`, and exit code 2. `fairtune --debug COMMAND ...` (or `FAIRTUNE_DEBUG=1`) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# (module, attribute) pairs; each module's `register(subparsers)` adds one or more subcommands.
_COMMAND_MODULES = (
    "fairtune.cli.train",
    "fairtune.cli.demo",
    "fairtune.cli.augment",
    "fairtune.cli.evaluate",
    "fairtune.cli.hub",
    "fairtune.cli.sweep",
    "fairtune.cli.monitor",
    "fairtune.cli.erase",
)

# command -> (module, one-line help): lets `fairtune --help` list the commands and `fairtune COMMAND` import only
# its own module. A module in `_COMMAND_MODULES` missing here still works: it is imported for the listing.
_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("fairtune.cli.train", "fine-tune with fairness objectives"),
    "demo": ("fairtune.cli.demo", "baseline vs debiased run on the embedded model and data"),
    "augment": (
        "fairtune.cli.augment",
        "counterfactual data augmentation (swap gender words, names, identity terms)",
    ),
    "evaluate": (
        "fairtune.cli.evaluate",
        "measure bias with benchmark suites and write results.json, report.md and plots",
    ),
    "thresholds": (
        "fairtune.cli.evaluate",
        "fit per-group decision thresholds (Hardt et al. 2016) and store them with the model",
    ),
    "erase": (
        "fairtune.cli.erase",
        "erase a group from a classifier's, token classifier's or QA model's representation (LEACE); plain model",
    ),
    "card": ("fairtune.cli.hub", "render DIR/README.md, the model card, from a trained model dir"),
    "push": ("fairtune.cli.hub", "upload a trained model dir and its card to the Hugging Face Hub"),
    "sweep": ("fairtune.cli.sweep", "run a recipe over weights x seeds; frontier and model selection"),
    "monitor": (
        "fairtune.cli.monitor",
        "fairness of a deployed model over windows of its prediction logs; exit 3 on an alert",
    ),
    "check-launch": (
        "fairtune.cli.train",
        "check that an accelerate config file fits this machine (GPUs, mixed precision)",
    ),
}

#: exceptions that mean "bad input" (a recipe value, a file, a row): one line and exit code 2, no traceback
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def _train_split(tail: list[str]) -> tuple[list[str], list[str]]:
    return [], tail


def _own_flags(command: str) -> set[str]:
    """The option strings a subcommand's own parser defines (the rest of its tail are recipe overrides)."""
    import importlib

    _, subparsers = _new_parser()
    importlib.import_module(f"fairtune.cli.{command}").register(subparsers)
    return {o for a in subparsers.choices[command]._actions for o in a.option_strings if o.startswith("--")} - {
        "--help"
    }


def _sweep_split(tail: list[str]) -> tuple[list[str], list[str]]:
    """`sweep` has its own flags (--grid, --seeds, --select, --output); everything else is a recipe override."""
    own = _own_flags("sweep")
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


def _new_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="fairtune", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (also: FAIRTUNE_DEBUG=1)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, subparsers


def _register(subparsers: argparse._SubParsersAction, module_name: str) -> bool:
    """Add the commands of one module; False when the module is not part of this build."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:  # a subcommand whose module is not part of this build
        if err.name is None or not module_name.startswith(err.name):
            raise
        return False
    module.register(subparsers)
    return True


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser: every subcommand, or (with a known `command`) only the module that defines it."""
    if command in _COMMANDS:
        parser, subparsers = _new_parser()
        if _register(subparsers, _COMMANDS[command][0]) and command in subparsers.choices:
            return parser
    parser, subparsers = _new_parser()
    for name in _COMMAND_MODULES:  # the full parser (for an unknown command argparse then lists the choices)
        _register(subparsers, name)
    return parser


def help_parser() -> argparse.ArgumentParser:
    """A parser for `fairtune --help` that lists every command without importing the command modules."""
    parser, subparsers = _new_parser()
    known = {m for m, _ in _COMMANDS.values()}
    for name in _COMMAND_MODULES:
        if name not in known:
            _register(subparsers, name)
    for command, (module, text) in _COMMANDS.items():
        if command not in subparsers.choices and module in _COMMAND_MODULES:
            subparsers.add_parser(command, help=text)
    return parser


def one_line(err: BaseException) -> str:
    """The error's message on one line (whitespace collapsed), or its type when it has none."""
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fairtune` console script and of `python -m fairtune`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("FAIRTUNE_DEBUG", "").lower() in ("1", "true", "yes")
    while argv and argv[0] == "--debug":
        debug = True
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        help_parser().print_help()
        return 0 if argv else 2
    command = argv[0]
    parser = build_parser(command if not command.startswith("-") else None)
    # `train` (and `sweep`) take free-form `--field value` overrides after an optional recipe path.
    if command in OVERRIDE_COMMANDS and not {"-h", "--help"} & set(argv[1:2]):
        head = argv[:2] if len(argv) > 1 and not argv[1].startswith("-") else argv[:1]
        tail = argv[len(head) :]
        known, rest = OVERRIDE_COMMANDS[command](tail)
        args = parser.parse_args(head + known)
        args.overrides = rest
    else:
        args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    args.debug = debug
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"fairtune {args.command}: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fairtune {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
