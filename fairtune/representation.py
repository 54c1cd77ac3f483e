"""Pooled representations and the adversary, computed inside the model's own forward.

Forward hooks on the backbone (to capture its last hidden state) and on the top-level model (to pool it and run
the adversary) put both inside whatever wraps the model (DDP, FSDP, DeepSpeed), so the adversary is trained like
any other submodule, and only the pooled vector, never every layer's hidden states, reaches the outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import make_dataclass
from functools import cache

import torch
from torch import nn
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES
from transformers.utils import ModelOutput

ADVERSARY_ATTR = "fairtune_adversary"
POOLED_KEY = "fairtune_pooled"
ADV_LOGITS_KEY = "fairtune_adv_logits"


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def is_decoder_model(model: nn.Module) -> bool:
    """Decoder-only architectures pool the last non-pad token; encoders the first token."""
    config = getattr(unwrap_peft(model), "config", None)
    model_type = getattr(config, "model_type", None)
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def find_backbone(model: nn.Module) -> nn.Module:
    """The transformer body whose first output is the last hidden state (e.g. `BertModel`, `LlamaModel`)."""
    inner = unwrap_peft(model)
    backbone = getattr(inner, "base_model", inner)
    return backbone if backbone is not None else inner


@cache
def _with_fairtune_fields(cls: type) -> type:
    """`cls` plus optional pooled and adversary fields: DDP (find_unused_parameters) and other pytree users
    rebuild outputs from their dataclass fields, and a key set on a plain ModelOutput is not one."""
    new = make_dataclass(
        f"Fairtune{cls.__name__}",
        [(POOLED_KEY, torch.Tensor | None, None), (ADV_LOGITS_KEY, torch.Tensor | None, None)],
        bases=(cls,),
    )
    new.__module__ = __name__
    globals()[new.__name__] = new  # picklable by name
    return new


def with_fairtune_outputs(output, pooled: torch.Tensor, adv_logits: torch.Tensor | None):
    """The model output with the pooled vector (and adversary logits) added as real fields."""
    extra = {POOLED_KEY: pooled}
    if adv_logits is not None:
        extra[ADV_LOGITS_KEY] = adv_logits
    if isinstance(output, ModelOutput):
        return _with_fairtune_fields(type(output))(**dict(output.items()), **extra)
    output.update(extra)
    return output


def adversary_source(output, pooled: torch.Tensor, adversary_input: str) -> torch.Tensor:
    """What the adversary reads: the pooled representation, or the model's predicted log-probabilities (Zhang et
    al. 2018; shift-invariant, so the encoder cannot hide the group in the logits' free offset)."""
    if adversary_input == "logits":
        return output["logits"].float().log_softmax(-1)
    return pooled


class RepresentationHooks:
    """Installs the hooks; `pool_fn(hidden, attention_mask)` chooses the pooling (the task adapter's) and
    `adversary_input` what the adversary reads (`representation` or `logits`)."""

    def __init__(
        self,
        model: nn.Module,
        pool_fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
        adversary_input: str = "representation",
    ) -> None:
        self.model = model
        self.pool_fn = pool_fn
        self.adversary_input = adversary_input
        self._hidden: torch.Tensor | None = None
        self.extra: dict = {}
        # Set by the trainer before each training forward: called with (adversary, detached pooled vector) to
        # take the adversary's extra steps inside the wrapped forward (so DDP/DeepSpeed see nothing unusual).
        self.before_adversary: Callable | None = None
        backbone = find_backbone(model)
        self._handles = [
            backbone.register_forward_hook(self._capture),
            model.register_forward_hook(self._attach, with_kwargs=True),
        ]

    def _capture(self, module, args, output) -> None:
        hidden = output[0] if isinstance(output, (tuple, list)) else output["last_hidden_state"]
        self._hidden = hidden

    def _attach(self, module, args, kwargs, output):
        hidden, self._hidden = self._hidden, None
        if hidden is None or not isinstance(output, dict):
            return output
        pooled = self.pool_fn(hidden, kwargs.get("attention_mask"))
        adversary = getattr(module, ADVERSARY_ATTR, None)
        if adversary is None:
            return with_fairtune_outputs(output, pooled, None)
        source = adversary_source(output, pooled, self.adversary_input)
        if self.before_adversary is not None and module.training:
            self.before_adversary(adversary, source.detach())
        return with_fairtune_outputs(output, pooled, adversary(source))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
