"""Model cards for debiased models: what was debiased, how, and with what measured effect.

Everything on a card comes from files in the model directory written by `fairtune train` / `fairtune evaluate`
(`fairtune_config.json`, `fairness_report.json`, an evaluation `results.json`, `*.png` plots) and from a baseline
the user names (`--baseline`). Nothing is estimated or invented: a number that is not in those files is not on the
card. Templates live in the top-level `model_cards/` folder (shipped with the package); metadata goes through
`huggingface_hub.ModelCardData` so that `ModelCard.load(path).data.eval_results` reads the fairness results back.

Modules, in dependency order: `base` (CardError, file names, shared helpers), `secrets` (token redaction),
`hub_ids` (Hub ids vs local paths), `tables` (tasks, objectives, metrics), `recipe` (what a config enables),
`run` (a run dir and its baseline), `results` (result tables), `metadata` (ModelCardData / model-index),
`context` (the template context), `templates` (template folder, Jinja environment), `render` (the card itself).
"""

from __future__ import annotations

from fairtune.cards.base import (
    BASELINE_NAME,
    CARD_NAME,
    CITATIONS_FILE,
    CONFIG_NAME,
    COUNT_KEYS,
    EVAL_RESULTS_NAME,
    MAIN_TEMPLATE,
    META_KEYS,
    REPORT_MD_NAME,
    REPORT_NAME,
    SMALL_GROUP_THRESHOLD,
    TOKEN_FIELDS,
    CardError,
)
from fairtune.cards.context import build_card_context
from fairtune.cards.hub_ids import looks_like_hub_id, resolve_hub_id
from fairtune.cards.metadata import build_card_data
from fairtune.cards.recipe import recipe_fields
from fairtune.cards.render import render_model_card, write_model_card
from fairtune.cards.run import RunFiles, find_evaluation_results, load_baseline, load_run
from fairtune.cards.secrets import current_token, find_secret, redact_secrets, scrub_config
from fairtune.cards.tables import (
    METRICS,
    STANDARD_AXES,
    TASKS,
    MetricInfo,
    TaskInfo,
    is_result_metric,
    metric_info,
    task_info,
)
from fairtune.cards.templates import template_dir

__all__ = [
    "BASELINE_NAME",
    "CARD_NAME",
    "CITATIONS_FILE",
    "CONFIG_NAME",
    "COUNT_KEYS",
    "CardError",
    "EVAL_RESULTS_NAME",
    "MAIN_TEMPLATE",
    "META_KEYS",
    "METRICS",
    "MetricInfo",
    "REPORT_MD_NAME",
    "REPORT_NAME",
    "RunFiles",
    "SMALL_GROUP_THRESHOLD",
    "STANDARD_AXES",
    "TASKS",
    "TOKEN_FIELDS",
    "TaskInfo",
    "build_card_context",
    "build_card_data",
    "current_token",
    "find_evaluation_results",
    "find_secret",
    "is_result_metric",
    "load_baseline",
    "load_run",
    "looks_like_hub_id",
    "metric_info",
    "recipe_fields",
    "redact_secrets",
    "render_model_card",
    "resolve_hub_id",
    "scrub_config",
    "task_info",
    "template_dir",
    "write_model_card",
]
