"""FairModel: the user's task model, the pooling that feeds the objectives, and the adversary, in one module.

The Trainer wraps a `FairModel` (DDP, FSDP, DeepSpeed see one module whose forward runs the task model, pools its
last hidden state and runs the adversary), so the adversary is trained, moved and synchronised like any other
submodule, and only the pooled vector, never every layer's hidden states, leaves the forward. The user's model is
held, never modified: no submodule is added to it and no hook is registered on it, so after training it is the
same plain transformers / PEFT model it was, and `FairModel.save_pretrained` writes only it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES
from transformers.utils import ModelOutput

#: the pooling a task adapter provides: (last hidden state, attention mask, adapter extras) -> [B, H]
PoolFn = Callable[[torch.Tensor, torch.Tensor | None, dict[str, Any]], torch.Tensor]
#: called inside the wrapped forward with (adversary, detached adversary input) before the adversary runs
BeforeAdversary = Callable[[nn.Module, torch.Tensor], None]


@dataclass
class FairOutput(ModelOutput):
    """What `FairModel.forward` returns.

    Args:
        pooled: `[B, H]` pooled representation (what the leakage probe and a representation adversary read).
        task_outputs: the task model's own output (logits, ...), without the hidden states fairtune asked for.
        adversary_logits: `[M, K, B, L, G]` adversary logits (see `Adversary`), or None without an adversary.
    """

    pooled: torch.Tensor | None = None
    task_outputs: ModelOutput | None = None
    adversary_logits: torch.Tensor | None = None


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def is_decoder_model(model: nn.Module) -> bool:
    """Decoder-only architectures pool the last non-pad token; encoders the first token."""
    config = getattr(unwrap_peft(model), "config", None)
    model_type = getattr(config, "model_type", None)
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def adversary_source(output: Any, pooled: torch.Tensor, adversary_input: str) -> torch.Tensor:
    """What the adversary reads: the pooled representation, or the model's predicted log-probabilities (Zhang et
    al. 2018; shift-invariant, so the encoder cannot hide the group in the logits' free offset)."""
    if adversary_input == "logits":
        return output["logits"].float().log_softmax(-1)
    return pooled


def _without_hidden_states(output: Any) -> Any:
    """The model output without `hidden_states` (ModelOutput keys cannot be deleted: rebuild it)."""
    if isinstance(output, ModelOutput) and output.get("hidden_states") is not None:
        return type(output)(**{k: v for k, v in output.items() if k != "hidden_states"})
    return output


class FairModel(nn.Module):
    """The task model plus pooling and an optional adversary.

    Args:
        model: a transformers (or PEFT) task model; held, never modified.
        pool: the task adapter's pooling (see `PoolFn`).
        adversary: the adversary module (`fairtune.objectives.adversarial.Adversary`), or None.
        adversary_input: `representation` (the pooled vector) or `logits` (the predicted log-probabilities).
    """

    def __init__(
        self,
        model: nn.Module,
        pool: PoolFn,
        adversary: nn.Module | None = None,
        adversary_input: str = "representation",
    ) -> None:
        super().__init__()
        if adversary_input not in ("representation", "logits"):
            raise ValueError(f"`adversary_input`: unknown input {adversary_input!r}; choose representation or logits.")
        self.task_model = model
        self.adversary = adversary
        self.pool = pool
        self.adversary_input = adversary_input

    def forward(
        self,
        pool_inputs: dict[str, Any] | None = None,
        before_adversary: BeforeAdversary | None = None,
        **inputs: Any,
    ) -> FairOutput:
        """Run the task model on `inputs`, pool its last hidden state (`pool_inputs`: the adapter's extra
        columns, e.g. NER's entity mask) and run the adversary; `before_adversary` takes the adversary's extra
        steps inside the wrapped forward (training only)."""
        keep_hidden = bool(inputs.pop("output_hidden_states", False))
        outputs = self.task_model(**inputs, output_hidden_states=True)
        hidden = outputs["hidden_states"][-1]
        pooled = self.pool(hidden, inputs.get("attention_mask"), pool_inputs or {})
        adversary_logits = None
        if self.adversary is not None:
            source = adversary_source(outputs, pooled, self.adversary_input)
            if before_adversary is not None and self.training:
                before_adversary(self.adversary, source.detach())
            adversary_logits = self.adversary(source)
        if not keep_hidden:
            outputs = _without_hidden_states(outputs)
        return FairOutput(pooled=pooled, task_outputs=outputs, adversary_logits=adversary_logits)

    # ---- what the Trainer and users ask of a model: answered by the task model -----------------------------
    @property
    def config(self):
        """The task model's configuration."""
        return self.task_model.config

    @property
    def device(self) -> torch.device:
        """Where the task model's parameters are."""
        return next(self.task_model.parameters()).device

    @property
    def main_input_name(self) -> str:
        return getattr(self.task_model, "main_input_name", "input_ids")

    def num_parameters(self, *args: Any, **kwargs: Any) -> int:
        """The task model's parameter count (the Trainer's FLOPs estimate)."""
        return self.task_model.num_parameters(*args, **kwargs)

    def gradient_checkpointing_enable(self, *args: Any, **kwargs: Any) -> None:
        self.task_model.gradient_checkpointing_enable(*args, **kwargs)

    def gradient_checkpointing_disable(self) -> None:
        self.task_model.gradient_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return bool(getattr(self.task_model, "is_gradient_checkpointing", False))

    def enable_input_require_grads(self) -> None:
        self.task_model.enable_input_require_grads()

    def save_pretrained(self, save_directory: str, **kwargs: Any) -> None:
        """Save only the task model (a plain transformers model or PEFT adapter); the adversary never goes
        there (checkpoints keep it in fairtune's own file)."""
        self.task_model.save_pretrained(save_directory, **kwargs)

    def push_to_hub(self, *args: Any, **kwargs: Any) -> Any:
        """Upload only the task model."""
        return self.task_model.push_to_hub(*args, **kwargs)

    def split_state_dict(self, state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict]:
        """A FairModel state dict (e.g. gathered by DeepSpeed/FSDP) split into (task model, adversary) dicts."""
        task, adversary = {}, {}
        for key, value in state_dict.items():
            if key.startswith("adversary."):
                adversary[key.removeprefix("adversary.")] = value
            else:
                task[key.removeprefix("task_model.")] = value
        return task, adversary
