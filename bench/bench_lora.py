"""LoRA classification step time: FairTrainer (adversary + group objectives) against a vanilla Trainer, same run.

Both train the same LoRA-wrapped decoder on the same batches; repeats are interleaved (vanilla, fair, vanilla, ...)
so that machine noise hits both alike. On a GPU when one is visible, otherwise on CPU with a tiny random Llama
(`--model` takes any local or Hub decoder, e.g. Qwen/Qwen2.5-0.5B on a GPU).

    python bench/bench_lora.py [--steps 20] [--repeats 5] [--batch 16] [--model PATH] [--max-length 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _tiny_decoder(path: Path) -> Path:
    """The tests' tiny random Llama with a word-level tokenizer."""
    sys.path.insert(0, str(REPO / "tests"))
    from dist_scripts.tiny_models import make_tiny_decoder

    return make_tiny_decoder(path, "llama")


def _rows(n: int) -> list[dict]:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import biased_rows

    return biased_rows(n, 0.9, seed=0)


def build(model_dir: str, fair: bool, args: argparse.Namespace, out: str):
    """A Trainer (vanilla) or FairTrainer (adversary + DP + EO + group DRO) over the same LoRA model and data."""
    from datasets import Dataset, DatasetDict
    from transformers import Trainer

    from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
    from fairtune.data import encode_datasets
    from fairtune.pipeline import load_model, load_tokenizer
    from fairtune.tasks.classification import ClassificationAdapter
    from fairtune.trainer import FairTrainer

    weights = dict(adversary_weight=1.0, dp_weight=1.0, eo_weight=1.0, group_dro_weight=1.0) if fair else {}
    targs = FairTrainingArguments(
        output_dir=out, per_device_train_batch_size=args.batch, learning_rate=1e-4, max_steps=args.steps,
        logging_steps=10**6, save_strategy="no", report_to="none", seed=0, disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available(), min_group_count=0,
        adversary_hidden_size=256, leakage_probe=False, **weights,
    )  # fmt: skip
    data_args = DataArguments(group_column="gender", max_length=args.max_length)
    raw = DatasetDict({"train": Dataset.from_list(_rows(args.batch * args.steps))})
    encoded, enc = encode_datasets(raw, data_args, targs)
    model_args = ModelArguments(
        model_name_or_path=model_dir, use_peft=True, lora_r=16, lora_alpha=32, lora_dropout=0.0
    )
    adapter = ClassificationAdapter()
    tok = load_tokenizer(model_args)
    model = load_model(model_args, adapter, tok, enc.label_list)
    train = adapter.preprocess(encoded["train"], tok, data_args, "train")
    common = dict(
        model=model, args=targs, train_dataset=train, processing_class=tok, data_collator=adapter.collator(tok)
    )
    if fair:
        return FairTrainer(**common, task_adapter=adapter, group_names=enc.group_names, label_list=enc.label_list)
    train = train.remove_columns([c for c in ("group", "pair_id", "is_cf") if c in train.column_names])
    common["train_dataset"] = train
    return Trainer(**common)


def time_steps(trainer) -> float:
    """Seconds per optimizer step over one `train()` (first step excluded as warm-up)."""
    from transformers import PrinterCallback, TrainerCallback

    trainer.remove_callback(PrinterCallback)
    stamps: list[float] = []

    class _Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    trainer.add_callback(_Clock())
    trainer.train()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(gaps)


def main(argv: list[str] | None = None) -> None:
    """Run the interleaved comparison and print a table."""
    import datasets
    import transformers

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="decoder to use (default: a tiny random Llama)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    args = p.parse_args(argv)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or str(_tiny_decoder(Path(tmp) / "tiny_llama"))
        times: dict[str, list[float]] = {"vanilla Trainer": [], "FairTrainer": []}
        for _ in range(args.repeats):
            for name, fair in (("vanilla Trainer", False), ("FairTrainer", True)):
                times[name].append(time_steps(build(model_dir, fair, args, str(Path(tmp) / "out"))))
    base = statistics.median(times["vanilla Trainer"])
    print(f"device: {device}; model: {args.model or 'tiny random Llama (2 layers, 32 wide)'}; LoRA r=16")
    print(f"batch {args.batch}, max_length {args.max_length}, {args.steps} steps x {args.repeats} interleaved repeats")
    print("FairTrainer: adversary (256 hidden) + DP + EO + group DRO\n")
    print(f"| {'trainer':<16} | {'median s/step':>13} | {'min s/step':>10} | {'vs vanilla':>10} |")
    print(f"|{'-' * 18}|{'-' * 15}|{'-' * 12}|{'-' * 12}|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name:<16} | {med:>13.4f} | {min(values):>10.4f} | {med / base:>9.2f}x |")


if __name__ == "__main__":
    main()
