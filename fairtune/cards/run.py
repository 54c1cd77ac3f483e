"""Loading a `fairtune train` output dir (RunFiles) and a baseline run or report."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairtune.cards.base import CONFIG_NAME, EVAL_RESULTS_NAME, REPORT_NAME, CardError, _is_number, _read_json
from fairtune.cards.hub_ids import _display_name
from fairtune.cards.recipe import _enabled_methods
from fairtune.cards.secrets import scrub_config
from fairtune.cards.tables import _metric_keys


def find_evaluation_results(model_dir: str | os.PathLike) -> Path | None:
    """The newest `results.json` written by `fairtune evaluate` in the model dir or a direct subfolder."""
    root = Path(model_dir)
    found = [root / EVAL_RESULTS_NAME] if (root / EVAL_RESULTS_NAME).is_file() else []
    for child in sorted(root.iterdir()) if root.is_dir() else ():
        if child.is_dir() and not _is_training_state_dir(child.name) and (child / EVAL_RESULTS_NAME).is_file():
            found.append(child / EVAL_RESULTS_NAME)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _is_training_state_dir(name: str) -> bool:
    return name.startswith(("checkpoint-", "global_step", ".")) or name in {"runs", "wandb", "last-checkpoint"}


def _where(report: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """Words for the data a report was measured on."""
    dataset = report.get("dataset") or config.get("dataset_name")
    split = report.get("split")
    count = f" ({report['num_examples']} examples)" if _is_number(report.get("num_examples")) else ""
    if split and dataset:
        return f"the `{split}` split of `{_display_name(dataset)}`{count}"
    for key, words in (("test_file", "the test file"), ("validation_file", "the validation file")):
        if config.get(key):
            return f"{words} `{_display_name(config[key])}`{count}"
    if dataset:
        return f"`{_display_name(dataset)}` (split not recorded)"
    return "the evaluation data of the training run (not recorded)"


@dataclass
class RunFiles:
    """What a trained model directory holds, read once."""

    model_dir: Path
    config: dict[str, Any]
    report: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    evaluation_path: Path | None = None
    model_config: dict[str, Any] | None = None
    adapter_config: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    thresholds: str | None = None


def load_run(model_dir: str | os.PathLike) -> RunFiles:
    """Read the config, reports and model metadata of a `fairtune train` output dir."""
    root = Path(model_dir)
    if not root.is_dir():
        raise CardError(f"--model-dir: {root} is not a directory; pass the `output_dir` of `fairtune train`.")
    if not (root / CONFIG_NAME).is_file():
        raise CardError(
            f"--model-dir: {root} has no {CONFIG_NAME}; pass the `output_dir` of a finished `fairtune train` run "
            "(the card is built from the resolved recipe saved there)."
        )
    run = RunFiles(model_dir=root, config=scrub_config(_read_json(root / CONFIG_NAME, CONFIG_NAME)))
    if (root / REPORT_NAME).is_file():
        run.report = _read_json(root / REPORT_NAME, REPORT_NAME)
    run.evaluation_path = find_evaluation_results(root)
    if run.evaluation_path is not None:
        run.evaluation = _read_json(run.evaluation_path, EVAL_RESULTS_NAME)
    if (root / "config.json").is_file():
        run.model_config = _read_json(root / "config.json", "config.json")
    if (root / "adapter_config.json").is_file():
        run.adapter_config = _read_json(root / "adapter_config.json", "adapter_config.json")
    run.plots = sorted(p.name for p in root.glob("*.png"))
    if run.evaluation_path is not None and run.evaluation_path.parent != root:
        run.plots += sorted(p.relative_to(root).as_posix() for p in run.evaluation_path.parent.glob("*.png"))
    thresholds = sorted(p.name for p in root.glob("*thresholds*.json"))
    run.thresholds = thresholds[0] if thresholds else None
    return run


def load_baseline(baseline: str | os.PathLike, *, model_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read a baseline run dir or report file into the `baseline_report.json` form (metrics + provenance)."""
    path = Path(baseline)
    if not path.exists():
        raise CardError(f"--baseline: {path} does not exist; pass a baseline run's output dir or its report JSON.")
    if path.is_dir():
        if model_dir is not None and path.resolve() == Path(model_dir).resolve():
            raise CardError("--baseline: points at the model dir itself; pass the run you compare against.")
        candidates = [path / REPORT_NAME, path / EVAL_RESULTS_NAME]
        evaluation = find_evaluation_results(path)
        candidates += [evaluation] if evaluation else []
        report_path = next((p for p in candidates if p.is_file()), None)
        if report_path is None:
            raise CardError(
                f"--baseline: {path} holds neither {REPORT_NAME} nor {EVAL_RESULTS_NAME}; pass the output dir of a "
                "baseline `fairtune train` run (all debiasing weights 0) or of `fairtune evaluate` on the base model."
            )
        config_path = path / CONFIG_NAME
        source = path.name
    else:
        report_path = path
        config_path = path.parent / CONFIG_NAME
        source = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    report = _read_json(report_path, "--baseline")
    if report.get("fairtune_baseline_version"):  # already in baseline form (a copied baseline_report.json)
        return report
    if not _metric_keys(report):
        raise CardError(f"--baseline: {report_path} has no numeric metrics at its top level; is it a fairness report?")
    config = scrub_config(_read_json(config_path, "--baseline config")) if config_path.is_file() else {}
    return {
        "fairtune_baseline_version": 1,
        "source": source,
        "model": config.get("base_model_hub_id") or _display_name(config.get("model_name_or_path")),
        "debiased": bool(_enabled_methods(config)) if config else None,
        "evaluated_on": _where(report, config) if config else _where(report, {}),
        "report": report,
    }
