"""fairtune: fine-tune Hugging Face transformers while removing social bias.

The public API is imported lazily, so `fairtune --help` does not pay for importing transformers.
"""

from __future__ import annotations

from fairtune._lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "FairTrainer": "fairtune.trainer",
    "FairTrainingArguments": "fairtune.config",
    "ModelArguments": "fairtune.config",
    "DataArguments": "fairtune.config",
    "parse_config": "fairtune.parser",
    "run_training": "fairtune.pipeline",
    "CounterfactualAugmenter": "fairtune.augment",
    "group_from_lexicon": "fairtune.augment",
    "group_fairness_metrics": "fairtune.metrics.group",
    "leakage_probe": "fairtune.objectives.adversarial",
    "FairBatch": "fairtune.objectives.base",
    "Objective": "fairtune.objectives",
    "register_objective": "fairtune.objectives",
    "FairModel": "fairtune.modeling",
    "FairnessMonitor": "fairtune.monitor",
    "FairnessCallback": "fairtune.callbacks",
    "get_adapter": "fairtune.tasks",
    "write_model_card": "fairtune.cards",
    "push": "fairtune.hub",
}

__all__ = [*_EXPORTS, "__version__"]


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
