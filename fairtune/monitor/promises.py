"""The fairness results a model card promises: read back from the `model-index` in `DIR/README.md`.

`fairtune card` writes every result as a `huggingface_hub.EvalResult` with the metric type of
`fairtune.cards.METRICS`; this maps them back to the report keys (`macro_f1` is type `f1` with `average: macro`).
"""

from __future__ import annotations

from pathlib import Path

from fairtune.cards import CARD_NAME, METRICS
from fairtune.monitor.config import MonitorError


def _key(metric_type: str, metric_args: dict | None) -> str:
    for key, info in METRICS.items():
        if info.type == metric_type and (info.args or None) == (metric_args or None):
            return key
    return metric_type


def read_promises(model_dir: str | Path) -> tuple[dict[str, float], list[str]]:
    """({report key: promised value}, notes) from the card's model-index; empty when there is no card."""
    from huggingface_hub import ModelCard

    path = Path(model_dir) / CARD_NAME
    if not path.is_file():
        return {}, [f"no model card at {path}: no promises to check (write one with `fairtune card`)."]
    try:
        card = ModelCard.load(path)
    except Exception as err:  # yaml or metadata errors from huggingface_hub
        first = str(err).strip().splitlines()[0]
        raise MonitorError(
            f"{path}: cannot read the card's YAML front matter ({first}); re-create it with "
            "`fairtune card --model-dir DIR`."
        ) from err
    promises: dict[str, float] = {}
    notes: list[str] = []
    for result in card.data.eval_results or []:
        if not isinstance(result.metric_value, (int, float)):
            continue
        key = _key(result.metric_type, result.metric_args)
        if key in promises:
            notes.append(f"{path}: several results for {key}; the first ({promises[key]:g}) is the promise.")
            continue
        promises[key] = float(result.metric_value)
    if not promises:
        notes.append(f"{path} has no results in its model-index: no promises to check.")
    return promises, notes
