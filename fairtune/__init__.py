"""fairtune: fine-tune Hugging Face transformers while removing social bias."""

__version__ = "0.1.0"
