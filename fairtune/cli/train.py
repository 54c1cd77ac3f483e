"""`fairtune train RECIPE.yaml [--field value ...]` and `fairtune check-launch ACCELERATE_CONFIG`.

Before anything heavy is loaded, `train` checks the launch (an accelerate config that does not fit the machine)
and the output directory (writable, not another run, resumable only with the same config); the pipeline then
validates the data before any model is loaded. At the end it prints a short summary (where the model, report and
card went; the task metric and the headline gaps) instead of leaving the user with progress bars.
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

#: the task metric shown first in the summary, by what the report holds
TASK_METRICS = ("accuracy", "macro_f1", "exact_match", "f1")
#: headline gaps shown in the summary, when the report holds them
GAP_METRICS = (
    "tpr_gap_rms",
    "equalized_odds_difference",
    "demographic_parity_difference",
    "f1_gap",
    "exact_match_gap",
    "recall_gap",
    "flip_rate",
)
# A task head that a base checkpoint does not have is expected to be newly initialized (fairtune builds it).
_HEAD_KEY = re.compile(r"(^|\.)(classifier|qa_outputs|score|pooler|pre_classifier)(\.|$)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ExpectedHeadReportFilter(logging.Filter):
    """Drops transformers' load report when all it says is that the task head is new (expected when fine-tuning).

    A report that lists any other missing or mismatched weight, or a conversion error, is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for a load report whose missing/mismatched keys are all task-head keys."""
        msg = _ANSI.sub("", str(record.getMessage()))
        if "LOAD REPORT" not in msg or "CONVERSION" in msg:
            return True
        keys = [
            line.split("|")[0].strip()
            for line in msg.splitlines()
            if "|" in line and line.split("|")[1].strip() in ("MISSING", "MISMATCH")
        ]
        return not all(_HEAD_KEY.search(k) for k in keys)


def quiet_expected_warnings() -> None:
    """Hide the expected new-head load report and torch's CPU `pin_memory` warning (CLI only, never the library)."""
    warnings.filterwarnings("ignore", message=r".*'pin_memory' argument is set as true but no accelerator is found.*")
    logger = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, ExpectedHeadReportFilter) for f in logger.filters):
        logger.addFilter(ExpectedHeadReportFilter())


class FieldsHelp(argparse.Action):
    """`fairtune train --help`: the HfArgumentParser's help, every recipe field with its type, default and help."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print_fields_help()
        parser.exit(0)


def print_fields_help() -> None:
    """Print `fairtune train`'s usage and every recipe field (from the argument dataclasses' metadata)."""
    from fairtune.parser import build_parser

    parser = build_parser()
    parser.usage = "fairtune train [RECIPE.yaml] [--field value ...]"
    print(parser.format_help())


def register(subparsers) -> None:
    """Add the `train` and `check-launch` subcommands."""
    p = subparsers.add_parser(
        "train",
        help="fine-tune with fairness objectives",
        description="Train from a flat YAML recipe; `--field value` flags override it (any fairtune or "
        "TrainingArguments field). Also: `accelerate launch -m fairtune train RECIPE.yaml`.",
        add_help=False,
    )
    p.add_argument("-h", "--help", action=FieldsHelp, help="list every recipe field with its help text")
    p.add_argument("recipe", nargs="?", help="YAML recipe (optional when every field is passed as a flag)")
    p.set_defaults(func=run, accepts_overrides=True)

    c = subparsers.add_parser(
        "check-launch",
        help="check that an accelerate config file fits this machine (GPUs, mixed precision)",
        description="Say whether `accelerate launch --config_file CONFIG` fits this machine before launching: "
        "processes vs visible GPUs, mixed precision and DeepSpeed/FSDP without a GPU.",
    )
    c.add_argument("config", help="accelerate config file, e.g. recipes/accelerate_configs/ddp.yaml")
    c.add_argument("--use-cpu", action="store_true", help="the recipe trains on CPU (`use_cpu: true`)")
    c.set_defaults(func=check_launch_command)


def check_launch_command(args: argparse.Namespace) -> int:
    """`fairtune check-launch CONFIG`: 0 and a line when it fits; a FairtuneError (exit code 2) when it does not."""
    from fairtune.launch_check import check_launch_config

    check_launch_config(args.config, use_cpu=args.use_cpu)
    print(f"fairtune check-launch: {args.config} fits this machine.")
    return 0


def saved_command(recipe: str | None, overrides: list[str]) -> str:
    """The command line written into fairtune_config.json, with token values redacted."""
    from fairtune.cards.secrets import redact_command

    argv = ["fairtune", "train", *([recipe] if recipe else []), *overrides]
    return " ".join(shlex.quote(a) for a in redact_command(argv))


def recipe_says_cpu(recipe: str | None, overrides: list[str]) -> bool:
    """Whether the recipe or a flag sets `use_cpu: true` (read without building the arguments)."""
    import yaml

    from fairtune.parser import load_recipe, parse_overrides

    try:
        value = {**load_recipe(recipe), **parse_overrides(overrides)}.get("use_cpu", False)
    except (ValueError, OSError):
        return False  # parse_config reports it
    return bool(yaml.safe_load(value)) if isinstance(value, str) else bool(value)


def run(args: argparse.Namespace) -> int:
    """Parse the recipe and overrides, check the launch and the output dir, run training, print the summary."""
    from fairtune.launch_check import check_launch
    from fairtune.parser import config_to_dict, parse_config
    from fairtune.runs import check_output_dir

    quiet_expected_warnings()
    overrides = list(getattr(args, "overrides", []) or [])
    if {"-h", "--help"} & set(overrides):  # `fairtune train RECIPE --help`
        print_fields_help()
        return 0
    # before the arguments are built: TrainingArguments starts torch.distributed in a launched process
    check_launch(use_cpu=recipe_says_cpu(args.recipe, overrides))
    model_args, data_args, training_args = parse_config(args.recipe, overrides)
    resume = check_output_dir(training_args, config_to_dict(model_args, data_args, training_args))
    training_args.resume_from_checkpoint = resume  # a checkpoint path or None; never the string "true"

    from fairtune.pipeline import run_training

    results = run_training(model_args, data_args, training_args, command=saved_command(args.recipe, overrides))
    if getattr(training_args, "process_index", 0) == 0:
        print(render_summary(results), file=sys.stdout)
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def render_summary(results: dict[str, Any]) -> str:
    """A few lines: where the model, report and card went; the task metric and headline gaps (with the baseline)."""
    out = Path(str(results.get("output_dir", ".")))
    lines = ["", f"fairtune train: done. Output: {out}"]
    weights = [
        n for n in ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin") if (out / n).is_file()
    ]
    files = {
        "model": out / weights[0] if weights else None,
        "report": out / "fairness_report.md" if (out / "fairness_report.md").is_file() else None,
        "card": out / "README.md" if (out / "README.md").is_file() else None,
    }
    for name, path in files.items():
        lines.append(f"  {name + ':':8s}{path if path else '(not written)'}")
    split = "test" if isinstance(results.get("test"), dict) else "validation"
    report = results.get(split) if isinstance(results.get(split), dict) else None
    train = results.get("train") or {}
    if "train_loss" in train:
        lines.append(
            f"  train loss {_fmt(float(train['train_loss']))} in {_fmt(float(train.get('train_runtime', 0)))} s"
        )
    if report:
        baseline = results.get("baseline") if isinstance(results.get("baseline"), dict) else {}
        n = report.get("num_examples")
        lines.append(f"  {split}{f' ({n} examples)' if n is not None else ''}:")
        for key in (*TASK_METRICS, *GAP_METRICS):
            if isinstance(report.get(key), (int, float)):
                base = baseline.get(key)
                versus = f"  (baseline {_fmt(base)})" if isinstance(base, (int, float)) else ""
                lines.append(f"    {key:30s} {_fmt(report[key])}{versus}")
    else:
        lines.append("  no validation or test split: no metrics (set `validation_file` to measure the gaps)")
    return "\n".join(lines)
