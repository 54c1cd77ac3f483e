"""LoRA for fairtune's task models: the right PEFT task type, default target modules and trainable heads.

`wrap_with_lora` is called by `fairtune.pipeline.load_model` when `use_peft` is on, before the FairTrainer exists.
The task head (`classifier`, `score` or `qa_outputs`) goes into `modules_to_save`, so it is trained in full and
saved with the adapter. The adversary is attached by the FairTrainer *after* wrapping: attached before, PEFT would
freeze it; attached after, it stays trainable and PEFT's adapter files leave it out (checkpoints keep it in
`fairtune_adversary.safetensors`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from torch import nn

#: fairtune task -> PEFT TaskType name
TASK_TYPES = {"classification": "SEQ_CLS", "ner": "TOKEN_CLS", "qa": "QUESTION_ANS"}
#: names of task heads that are trained in full and saved with the adapter
HEAD_NAMES = ("classifier", "score", "qa_outputs")


def check_4bit_support() -> None:
    """Raise a clear error unless 4-bit loading can work here (a CUDA GPU and bitsandbytes)."""
    import torch

    if not torch.cuda.is_available():
        raise ValueError(
            "`load_in_4bit`: 4-bit loading needs a CUDA GPU (bitsandbytes kernels); none is visible. "
            "Set `load_in_4bit: false` or run on a GPU machine."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("`load_in_4bit`: needs the bitsandbytes package; `pip install bitsandbytes` or turn it off.")


def task_type_for(task: str) -> str:
    """PEFT `TaskType` name for a fairtune task."""
    try:
        return TASK_TYPES[task]
    except KeyError:
        raise ValueError(f"`task`: no LoRA task type for {task!r}; choose one of {', '.join(TASK_TYPES)}.") from None


def head_modules(model: nn.Module) -> list[str]:
    """Names of the task heads present among the model's direct children (e.g. `["score"]`)."""
    children = dict(model.named_children())
    return [name for name in HEAD_NAMES if name in children]


def default_target_modules(model: nn.Module) -> list[str]:
    """PEFT's default LoRA targets for the architecture (attention query/value projections)."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as MAPPING

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in MAPPING:
        raise ValueError(
            f"`lora_target_modules`: no default for model type {model_type!r}; name the modules to adapt, e.g. "
            "`lora_target_modules: [q_proj, v_proj]` (or `all-linear`)."
        )
    return list(MAPPING[model_type])


def _uses_conv1d(model: nn.Module, targets: list[str] | str) -> bool:
    """Whether the targeted layers are GPT-2 style `Conv1D` (weights stored transposed: `fan_in_fan_out`)."""
    from transformers.pytorch_utils import Conv1D

    if isinstance(targets, str):
        return False
    return any(isinstance(m, Conv1D) and name.rsplit(".", 1)[-1] in targets for name, m in model.named_modules())


def lora_config(model: nn.Module, model_args: Any, task: str):
    """The `LoraConfig` for a model and the recipe's `lora_*` fields."""
    from peft import LoraConfig

    targets: list[str] | str
    if model_args.lora_target_modules:
        targets = list(model_args.lora_target_modules)
        if targets == ["all-linear"]:
            targets = "all-linear"
    else:
        targets = default_target_modules(model)
    heads = head_modules(model)
    if not heads:
        raise ValueError(
            f"`use_peft`: found no task head ({', '.join(HEAD_NAMES)}) on {type(model).__name__}; "
            "fairtune trains the head in full next to the LoRA adapters."
        )
    return LoraConfig(
        task_type=task_type_for(task),
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        modules_to_save=heads,
        fan_in_fan_out=_uses_conv1d(model, targets),
        bias="none",
    )


def wrap_with_lora(model: nn.Module, model_args: Any, adapter: Any) -> nn.Module:
    """Wrap a task model in a PEFT LoRA model: adapters on the attention layers, the task head trained in full."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    task = getattr(adapter, "name", None) or getattr(model_args, "task", "classification")
    if getattr(model_args, "load_in_4bit", False) or getattr(model, "is_loaded_in_4bit", False):
        check_4bit_support()
        # Casts norms to fp32 and makes inputs require grad; gradient checkpointing stays a TrainingArguments knob.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = lora_config(model, model_args, task)
    return get_peft_model(model, config)


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that will be trained (for logging and tests)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]
