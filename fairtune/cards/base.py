"""CardError, the names of the files a card is built from, shared key lists and small value helpers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CONFIG_NAME = "fairtune_config.json"
REPORT_NAME = "fairness_report.json"
REPORT_MD_NAME = "fairness_report.md"
EVAL_RESULTS_NAME = "results.json"
BASELINE_NAME = "baseline_report.json"
CARD_NAME = "README.md"
MAIN_TEMPLATE = "fairtune_model_card.md.j2"
CITATIONS_FILE = "citations.yaml"

#: fields that may hold a Hub token; removed from anything fairtune writes
TOKEN_FIELDS = ("hub_token", "push_to_hub_token")
#: keys of fairtune_config.json that are provenance, not recipe fields
META_KEYS = ("command", "fairtune_version", "base_model_hub_id", "group_names", "label_list", "group_counts")
#: per-group keys that count evaluation examples
COUNT_KEYS = ("n", "count", "support", "num_examples", "n_examples")
SMALL_GROUP_THRESHOLD = 100
_NOT_METRICS = frozenset(
    {
        *COUNT_KEYS,
        "epoch",
        "step",
        "global_step",
        "seed",
        "runtime",
        "ci_level",
        "confidence_level",
        "n_bootstrap",
        "bootstrap_samples",
        "num_groups",
    }
)


class CardError(ValueError):
    """A model directory or baseline that cannot be turned into a card; the message names the fix."""


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CardError(f"{what}: {path} is not valid JSON ({err}); re-create it with `fairtune train`.") from err
    if not isinstance(data, dict):
        raise CardError(f"{what}: {path} must hold a JSON object, found {type(data).__name__}.")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _as_list(value: Any) -> list[str]:
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


def _package_version() -> str:
    from fairtune import __version__

    return __version__
