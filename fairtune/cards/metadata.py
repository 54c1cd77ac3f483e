"""The card's YAML metadata: ModelCardData with tags, base model, datasets and the model-index results."""

from __future__ import annotations

from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from fairtune.cards.hub_ids import _display_name, _is_hub_dataset, resolve_hub_id
from fairtune.cards.recipe import _cda_enabled
from fairtune.cards.run import RunFiles
from fairtune.cards.tables import _metric_keys, metric_info, task_info


def build_card_data(run: RunFiles, *, model_name: str, objectives: list[dict[str, Any]]) -> ModelCardData:
    """The card's YAML metadata: library, tags, base model, datasets and the fairness results as eval results."""
    config = run.config
    task = task_info(config.get("task", "classification"))
    roots = [run.model_dir, run.model_dir.parent]
    peft = run.adapter_config is not None
    name = config.get("model_name_or_path") or (run.adapter_config or {}).get("base_model_name_or_path")
    base_model = resolve_hub_id(name, config.get("base_model_hub_id"), search_roots=roots)
    dataset = config.get("dataset_name")
    dataset_id = dataset if _is_hub_dataset(dataset, roots) else None

    tags = ["fairtune", "debiasing", task.pipeline_tag]
    tags += [obj["tag"] for obj in objectives if obj.get("tag")]
    if _cda_enabled(config):
        tags.append("counterfactual-data-augmentation")
    if peft:
        tags.append("peft")

    eval_results = []
    dataset_type = dataset_id or "custom"
    split = None
    if run.report:
        split = run.report.get("split")
    dataset_pretty = dataset_id or _display_name(config.get("test_file") or config.get("validation_file")) or "custom"
    for key in _metric_keys(run.report):
        info = metric_info(key)
        eval_results.append(
            EvalResult(
                task_type=task.pipeline_tag,
                task_name=task.pretty,
                dataset_type=dataset_type,
                dataset_name=dataset_pretty,
                dataset_config=config.get("dataset_config_name") if dataset_id else None,
                dataset_split=split,
                metric_type=info.type,
                metric_name=info.name,
                metric_value=float(f"{run.report[key]:.6g}"),
                metric_args=info.args,
            )
        )
    return ModelCardData(
        library_name="peft" if peft else "transformers",
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        pipeline_tag=task.pipeline_tag,
        tags=tags,
        metrics=sorted({r.metric_type for r in eval_results}) or None,
        model_name=model_name,
        eval_results=eval_results or None,
    )
