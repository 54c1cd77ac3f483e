"""Pooled representations and the adversary, computed inside the model's own forward.

Forward hooks on the backbone (to capture its last hidden state) and on the top-level model (to pool it and run
the adversary) put both inside whatever wraps the model (DDP, FSDP, DeepSpeed), so the adversary is trained like
any other submodule, and only the pooled vector, never every layer's hidden states, reaches the outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

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


class RepresentationHooks:
    """Installs the hooks; `pool_fn(hidden, attention_mask)` chooses the pooling (the task adapter's)."""

    def __init__(self, model: nn.Module, pool_fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]) -> None:
        self.model = model
        self.pool_fn = pool_fn
        self._hidden: torch.Tensor | None = None
        self.extra: dict = {}
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
        output[POOLED_KEY] = pooled
        adversary = getattr(module, ADVERSARY_ATTR, None)
        if adversary is not None:
            output[ADV_LOGITS_KEY] = adversary(pooled)
        return output

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
