"""Loading a model to evaluate (a fairtune output dir, any saved transformers model, or a Hub id) and its kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("masked_lm", "causal_lm", "classifier", "qa", "token_classifier")

_ARCH_SUFFIXES = (
    ("ForMaskedLM", "masked_lm"),
    ("ForCausalLM", "causal_lm"),
    ("LMHeadModel", "causal_lm"),
    ("ForSequenceClassification", "classifier"),
    ("ForQuestionAnswering", "qa"),
    ("ForTokenClassification", "token_classifier"),
)


@dataclass
class LoadedModel:
    """A model in eval mode on its device, its tokenizer, its kind (one of `KINDS`) and where it came from."""

    model: Any
    tokenizer: Any
    kind: str
    source: str

    @property
    def device(self) -> Any:
        """The device the model's parameters live on."""
        return next(self.model.parameters()).device


def detect_kind(config: Any) -> str:
    """The model kind from `config.architectures` (e.g. BertForMaskedLM -> masked_lm)."""
    for arch in getattr(config, "architectures", None) or []:
        for suffix, kind in _ARCH_SUFFIXES:
            if arch.endswith(suffix):
                return kind
    raise ValueError(
        f"cannot tell the model kind from architectures={getattr(config, 'architectures', None)}; "
        f"pass one of {KINDS} explicitly (recipe key `model_kind` or --model-kind)"
    )


def _auto_class(kind: str) -> Any:
    """The transformers Auto class loading models of `kind`."""
    import transformers as tf

    return {
        "masked_lm": tf.AutoModelForMaskedLM,
        "causal_lm": tf.AutoModelForCausalLM,
        "classifier": tf.AutoModelForSequenceClassification,
        "qa": tf.AutoModelForQuestionAnswering,
        "token_classifier": tf.AutoModelForTokenClassification,
    }[kind]


def load_model(name_or_path: str, kind: str | None = None, device: str | None = None) -> LoadedModel:
    """Load a model and tokenizer for evaluation; `kind` is detected from the config when not given."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(name_or_path)
    kind = kind or detect_kind(config)
    if kind not in KINDS:
        raise ValueError(f"model kind {kind!r} is not one of {KINDS}")
    model = _auto_class(kind).from_pretrained(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, kind=kind, source=str(name_or_path))


def require_kind(loaded: LoadedModel, suite: str, allowed: tuple[str, ...]) -> None:
    """Raise a clear error when a suite is asked to run on a model of the wrong kind."""
    if loaded.kind not in allowed:
        raise ValueError(f"suite {suite!r} needs a model of kind {allowed}, but {loaded.source} is {loaded.kind!r}")
