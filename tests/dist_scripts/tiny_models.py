"""Tiny random models with a working local word-level tokenizer, for the distributed and PEFT tests.

(transformers 5 ignores `BertTokenizerFast(vocab_file=...)`; the tokenizer must get `vocab=`, or every word
becomes `[UNK]`.)
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "he she his her him man woman john mary james linda nurse surgeon engineer teacher writes code patients cares "
    "for builds bridges treats operates reads books likes music is a an the and of to in at good bad said works "
    "hospital lab office school , ."
).split()


def make_word_tokenizer(path: Path, pad: bool = True):
    """A lower-casing BERT-style tokenizer over `WORDS`; `pad=False` gives a GPT-2-like one with only an EOS."""
    from transformers import BertTokenizer

    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<eos>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + WORDS))}
    tok = BertTokenizer(vocab=vocab, eos_token="<eos>")
    if not pad:
        tok.pad_token = None
    tok.save_pretrained(path)
    return tok


def make_tiny_decoder(path: Path, kind: str = "llama", num_labels: int = 2, seed: int = 0, pad: bool = True) -> Path:
    """A 2-layer, 32-wide random `llama` or `gpt2` sequence classifier saved with its tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification, LlamaConfig, LlamaForSequenceClassification

    tok = make_word_tokenizer(path, pad=pad)
    torch.manual_seed(seed)
    pad_id = tok.pad_token_id if pad else None
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=64, num_labels=num_labels, pad_token_id=pad_id,
        )  # fmt: skip
        LlamaForSequenceClassification(config).save_pretrained(path)
    elif kind == "gpt2":
        config = GPT2Config(
            vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=64, num_labels=num_labels,
            pad_token_id=pad_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )  # fmt: skip
        GPT2ForSequenceClassification(config).save_pretrained(path)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return path


if __name__ == "__main__":  # build one from the command line: python tiny_models.py DIR [llama|gpt2]
    import sys

    make_tiny_decoder(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "llama")
