"""Shared fixtures: tiny random models built from configs, a local tokenizer, small controlled-bias data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

WORDS = (
    "he she his her him hers man woman mr mrs john mary james linda patricia robert nurse surgeon engineer teacher writes code "
    "patients cares builds bridges treats operates reads books likes music is a an the and of to in at good bad "
    "great awful movie film plot actor actress story boring fun works hospital lab office school"
).split()


def make_tokenizer(path: Path):
    """A small WordPiece tokenizer made locally with `tokenizers` (no download)."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [
        *sorted(set(WORDS)),
        *list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"),
        *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"],
    ]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(specials + pieces))}
    tk = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    tok.save_pretrained(path)
    return tok


def make_tiny_bert(path: Path, task: str = "classification", num_labels: int = 2, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT saved with its tokenizer at `path`."""
    import torch
    from transformers import (
        BertConfig,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
    )

    tok = make_tokenizer(path)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    cls = {
        "classification": BertForSequenceClassification,
        "ner": BertForTokenClassification,
        "qa": BertForQuestionAnswering,
    }[task]
    cls(config).save_pretrained(path)
    return path


def make_tiny_llama(path: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A 2-layer random Llama-style decoder for sequence classification, with the local tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = make_tokenizer(path)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        num_labels=num_labels,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForSequenceClassification(config).save_pretrained(path)
    return path


def biased_rows(n: int, bias: float, seed: int = 0) -> list[dict]:
    """Controlled-bias classification rows: the label is `surgeon`/`nurse`; a weak task cue appears in half the
    rows, and the gendered words agree with the label with probability `bias` (0.5 = no correlation)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        female = rng.random() < bias if label == 1 else rng.random() >= bias
        pron, name = ("she", rng.choice(["Mary", "Patricia"])) if female else ("he", rng.choice(["John", "James"]))
        cue = rng.choice(["operates", "builds bridges"]) if label == 0 else rng.choice(["cares", "treats patients"])
        body = cue if rng.random() < 0.5 else rng.choice(["works", "reads books", "likes music"])
        rows.append(
            {
                "text": f"{name} is good . {pron} {body} at the hospital",
                "label": ["surgeon", "nurse"][label],
                "gender": "female" if female else "male",
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture
def biased_files(tmp_path) -> dict[str, Path]:
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", biased_rows(64, 0.9, seed=1)),
        "validation": write_jsonl(tmp_path / "validation.jsonl", biased_rows(32, 0.5, seed=2)),
    }
