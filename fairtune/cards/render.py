"""Rendering a model dir's card and writing README.md (and baseline_report.json)."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from fairtune.cards.base import BASELINE_NAME, CARD_NAME, MAIN_TEMPLATE, _read_json
from fairtune.cards.context import build_card_context
from fairtune.cards.metadata import build_card_data
from fairtune.cards.run import load_baseline, load_run
from fairtune.cards.secrets import current_token, redact_secrets
from fairtune.cards.templates import _environment, template_dir

logger = logging.getLogger(__package__)  # "fairtune.cards", as before the split


def render_model_card(
    model_dir: str | os.PathLike,
    *,
    baseline: str | os.PathLike | Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    templates: str | os.PathLike | None = None,
) -> ModelCard:
    """Render the card of a trained model dir (baseline: a path, an already loaded baseline, or the saved one)."""
    run = load_run(model_dir)
    if baseline is None and (run.model_dir / BASELINE_NAME).is_file():
        baseline = _read_json(run.model_dir / BASELINE_NAME, BASELINE_NAME)
    elif baseline is not None and not isinstance(baseline, Mapping):
        baseline = load_baseline(baseline, model_dir=run.model_dir)
    context = build_card_context(run, baseline=baseline, repo_id=repo_id)
    card_data = build_card_data(run, model_name=context["model_name"], objectives=context["objectives"])
    env = _environment(Path(templates) if templates else template_dir())
    text = env.get_template(MAIN_TEMPLATE).render(card_data=card_data.to_yaml(), **context)
    text = redact_secrets(re.sub(r"\n{3,}", "\n\n", text), (current_token(),))
    return ModelCard(text)


def write_model_card(output_dir: str | os.PathLike, *, baseline: str | os.PathLike | None = None) -> Path:
    """Render `output_dir/README.md` (and save a named baseline as `baseline_report.json` for later renders)."""
    root = Path(output_dir)
    loaded = None
    if baseline is not None:
        loaded = load_baseline(baseline, model_dir=root)
    card = render_model_card(root, baseline=loaded)
    if loaded is not None:
        text = redact_secrets(json.dumps(loaded, indent=2, sort_keys=False), (current_token(),))
        (root / BASELINE_NAME).write_text(text + "\n", encoding="utf-8")
    path = root / CARD_NAME
    card.save(path)
    logger.info("Wrote model card %s", path)
    return path
