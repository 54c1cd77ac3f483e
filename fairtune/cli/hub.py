"""`fairtune card` and `fairtune push`: render a model card, upload a trained model dir (library code in fairtune.hub)."""

from __future__ import annotations

import argparse
import sys

from fairtune.cards import CardError
from fairtune.hub import HubError, push


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def _card_command(args: argparse.Namespace) -> int:
    from fairtune.cards import write_model_card

    try:
        path = write_model_card(args.model_dir, baseline=args.baseline)
    except (CardError, HubError) as err:
        print(f"fairtune card: error: {err}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


def _push_command(args: argparse.Namespace) -> int:
    try:
        result = push(
            args.model_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            dry_run=args.dry_run,
            baseline=args.baseline,
            output_folder=args.output_folder,
            keep_card=args.keep_card,
        )
    except (CardError, HubError) as err:
        print(f"fairtune push: error: {err}", file=sys.stderr)
        return 2
    if result is None:
        return 0
    if result.dry_run:
        print(
            f"Dry run: nothing uploaded. {result.repo_id} would receive {len(result.files)} files, in {result.folder}:"
        )
    else:
        print(f"Pushed {len(result.files)} files to https://huggingface.co/{result.repo_id}: {result.commit_url}")
    for rel in result.files:
        print(f"  {rel}  ({_human_size(result.sizes.get(rel, 0))})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `card` and `push` subcommands to the `fairtune` parser."""
    card = subparsers.add_parser(
        "card",
        help="render DIR/README.md, the model card, from a trained model dir",
        description="Render the model card (README.md) of a `fairtune train` output dir from its saved config and "
        "reports. Before/after numbers come only from --baseline.",
    )
    card.add_argument("--model-dir", required=True, help="output_dir of `fairtune train`")
    card.add_argument(
        "--baseline",
        default=None,
        metavar="DIR_OR_REPORT",
        help="baseline run dir or its fairness_report.json / results.json: the card's 'before' numbers",
    )
    card.set_defaults(func=_card_command)

    push_parser = subparsers.add_parser(
        "push",
        help="upload a trained model dir and its card to the Hugging Face Hub",
        description="Upload weights (safetensors), tokenizer, config, fairtune config, reports, plots and the card. "
        "Never uploads adversary weights, optimizer/scheduler/RNG state, checkpoints or training_args.bin. The token "
        "comes from `hf auth login` or HF_TOKEN.",
    )
    push_parser.add_argument("--model-dir", required=True, help="output_dir of `fairtune train`")
    push_parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="target model repository")
    push_parser.add_argument("--private", action="store_true", help="create the repository as private")
    push_parser.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    push_parser.add_argument("--commit-message", default=None, help="commit message")
    push_parser.add_argument(
        "--dry-run", action="store_true", help="write the exact folder that would be uploaded and list it"
    )
    push_parser.add_argument(
        "--output-folder", default=None, help="where --dry-run writes the folder (default: a new temporary folder)"
    )
    push_parser.add_argument(
        "--baseline", default=None, metavar="DIR_OR_REPORT", help="baseline for the card's 'before' numbers"
    )
    push_parser.add_argument(
        "--keep-card", action="store_true", help="upload DIR/README.md as it is instead of rendering the card again"
    )
    push_parser.set_defaults(func=_push_command)
