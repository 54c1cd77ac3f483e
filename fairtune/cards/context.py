"""The template context: everything a card shows, computed from the run's files and the baseline."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from fairtune.cards.base import (
    CITATIONS_FILE,
    COUNT_KEYS,
    SMALL_GROUP_THRESHOLD,
    CardError,
    _as_list,
    _is_number,
    _package_version,
)
from fairtune.cards.hub_ids import _display_name, _is_hub_dataset, resolve_hub_id
from fairtune.cards.recipe import _adversary, _cda, _group_balance, _objectives, recipe_fields
from fairtune.cards.results import _evaluation, _join, _leakage, _per_group, _results
from fairtune.cards.run import RunFiles
from fairtune.cards.secrets import current_token, redact_secrets
from fairtune.cards.tables import STANDARD_AXES, _metric_keys, task_info
from fairtune.cards.templates import template_dir


def _phrase(name: str) -> str:
    """A method name inside a sentence: lower-cased unless it is a proper name (MinDiff, Group DRO)."""
    return name if any(c.isupper() for c in name[1:]) else name[0].lower() + name[1:]


def _limitations(config: Mapping[str, Any], per_group: Mapping[str, Any]) -> dict[str, Any]:
    groups = [row["group"] for row in per_group["rows"]]
    words = [w.lower() for w in [*_as_list(config.get("cda_axes")), *_as_list(config.get("group_column"))]]
    words += [part for group in groups for part in re.split(r"[\s:_/,-]+", group.lower()) if part]
    covered = [axis for axis, keys in STANDARD_AXES.items() if any(w in keys or w == axis for w in words)]
    known = {k for keys in STANDARD_AXES.values() for k in keys} | set(STANDARD_AXES)
    covered += [a for a in _as_list(config.get("cda_axes")) if a.lower() not in known and a not in covered]
    small = []
    count_index = next((i for i, c in enumerate(per_group["columns"]) if c in COUNT_KEYS), None)
    if count_index is not None:
        small = [
            row["group"]
            for row in per_group["rows"]
            if _is_number(row["values"][count_index]) and row["values"][count_index] < SMALL_GROUP_THRESHOLD
        ]
    return {
        "groups": groups,
        "intersectional": len(_as_list(config.get("group_column"))) > 1,
        "axes_covered": covered,
        "axes_not_covered": [axis for axis in STANDARD_AXES if axis not in covered],
        "small_groups": small,
        "small_group_threshold": SMALL_GROUP_THRESHOLD,
    }


def _citations(keys: Iterable[str], table: Mapping[str, Any]) -> list[dict[str, Any]]:
    seen: list[str] = []
    for key in keys:
        if key not in seen:
            if key not in table:
                raise CardError(f"citation {key!r} is missing from model_cards/{CITATIONS_FILE}.")
            seen.append(key)
    return [{"key": key, **table[key]} for key in seen]


def build_card_context(
    run: RunFiles, *, baseline: Mapping[str, Any] | None = None, repo_id: str | None = None
) -> dict[str, Any]:
    """Everything the templates show, computed from the run's files and the baseline (never invented)."""
    config = run.config
    task = task_info(config.get("task", "classification"))
    objectives = _objectives(config)
    roots = [run.model_dir, run.model_dir.parent]
    peft = run.adapter_config is not None
    name = config.get("model_name_or_path") or (run.adapter_config or {}).get("base_model_name_or_path")
    hub_id = resolve_hub_id(name, config.get("base_model_hub_id"), search_roots=roots)
    base = {
        "hub_id": hub_id,
        "peft": peft,
        "display": f"[`{hub_id}`](https://huggingface.co/{hub_id})"
        if hub_id
        else "a local model (its Hub id was not recorded: set `base_model_hub_id` in the recipe to name it)",
    }
    id2label = (run.model_config or {}).get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=lambda k: int(k) if str(k).isdigit() else str(k))]
    dataset = config.get("dataset_name")
    local_files = [_display_name(config[k]) for k in ("train_file", "validation_file", "test_file") if config.get(k)]
    if dataset and dataset != "demo" and not _is_hub_dataset(dataset, roots):
        local_files.append(_display_name(dataset))
    group_columns = _as_list(config.get("group_column"))
    columns = [
        (label, config[key])
        for key, label in (("text_column", "Text column"), ("text_pair_column", "Second text column"))
        if config.get(key)
    ]
    columns += [("Label column", config["label_column"])] if config.get("label_column") else []
    if group_columns:
        label = "Group columns (intersectional groups)" if len(group_columns) > 1 else "Group column"
        columns.append((label, " × ".join(group_columns)))
    if config.get("group_from_lexicon"):
        columns.append(("Groups labelled from lexicon", config["group_from_lexicon"]))
    counts = config.get("group_counts")
    if isinstance(counts, Mapping) and isinstance(counts.get("train"), Mapping):  # counts per split
        counts = counts["train"]
    group_counts = [(str(k), v) for k, v in counts.items() if _is_number(v)] if isinstance(counts, Mapping) else []
    cda = _cda(config)
    per_group = _per_group(run.report)
    results = _results(run, baseline)
    citation_keys = [key for obj in objectives for key in obj["citations"]]
    if cda["enabled"]:
        citation_keys += cda["citations"]
    if run.thresholds:
        citation_keys.append("hardt2016")
    leakage = _leakage(run, baseline)
    if leakage:
        citation_keys.append("elazar2018")
    reported = set(_metric_keys(run.report)) | set(_metric_keys(run.evaluation))
    if "tpr_gap_rms" in reported:
        citation_keys.append("dearteaga2019")
    if "ctf_gap" in reported:
        citation_keys.append("garg2019")
    citations_table = yaml.safe_load((template_dir() / CITATIONS_FILE).read_text(encoding="utf-8"))
    for obj in objectives:  # a third-party objective brings its own references
        citations_table = {**obj.get("references", {}), **citations_table}
    citations = _citations(citation_keys, citations_table)
    methods = [obj["name"] for obj in objectives]
    if cda["enabled"]:
        methods.append("counterfactual data augmentation")
    if _group_balance(config):
        methods.append(f"group balancing ({_group_balance(config)})")
    if run.thresholds:
        methods.append("group-specific thresholds")
    token = current_token()
    command = config.get("command") or "(the command line was not recorded)"
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    recipe_yaml = yaml.safe_dump(recipe_fields(config), sort_keys=False, default_flow_style=False).strip()
    return {
        "model_name": (repo_id.split("/")[-1] if repo_id else run.model_dir.resolve().name),
        "repo_id": repo_id,
        "fairtune_version": config.get("fairtune_version") or _package_version(),
        "task": task,
        "base": base,
        "labels": labels,
        "methods": methods,
        "methods_phrase": _join([_phrase(m) for m in methods]) if methods else None,
        "remote_code": bool((run.model_config or {}).get("auto_map")) or bool(config.get("trust_remote_code")),
        "data": {
            "dataset_name": dataset if _is_hub_dataset(dataset, roots) else None,
            "dataset_config": config.get("dataset_config_name"),
            "local_files": local_files,
            "builtin_demo": dataset == "demo",
            "columns": columns,
            "group_counts": group_counts,
        },
        "objectives": objectives,
        "adversary": _adversary(config),
        "cda": cda,
        "group_balance": _group_balance(config),
        "thresholds": run.thresholds,
        "results": results,
        "evaluation": _evaluation(run, [r["key"] for r in results["rows"]]),
        "leakage": leakage,
        "per_group": per_group,
        "plots": run.plots,
        "limitations": _limitations(config, per_group),
        "reproduce": {
            "command": redact_secrets(str(command), (token,)),
            "recipe_yaml": redact_secrets(recipe_yaml or "{}", (token,)),
        },
        "citations": citations,
        "citations_by_key": {entry["key"]: entry for entry in citations},
    }
