"""Finding the card templates and the Jinja environment that renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from fairtune.cards.base import MAIN_TEMPLATE, CardError


def template_dir() -> Path:
    """The folder holding the card templates, in a source checkout or an installed package."""
    here = Path(__file__).resolve().parents[1]  # the fairtune package, not this subpackage
    for candidate in (here / "model_cards", here.parent / "model_cards"):
        if (candidate / MAIN_TEMPLATE).is_file():
            return candidate
    raise CardError(f"model card templates not found (looked for {MAIN_TEMPLATE} next to the fairtune package).")


def _md(value: Any) -> str:
    """Escape a value for a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["md"] = _md
    return env
