"""Step time and activation memory of FairTrainer per objective, and all together, against a vanilla Trainer.

Same model weights (all-MiniLM-L6-v2), same batches (the demo's biographies with their counterfactuals), measured
in the same run with interleaved repeats (the machine is noisy). Memory: bytes saved for backward during a step
(activation memory, deterministic on CPU); on a GPU also the CUDA peak. Run: `python bench/bench_trainer.py`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONFIGS: dict[str, dict] = {
    "dp": {"dp_weight": 1.0},
    "eo": {"eo_weight": 1.0},
    "mindiff": {"mindiff_weight": 1.0},
    "group_dro": {"group_dro_weight": 1.0},
    "loss_parity": {"loss_parity_weight": 1.0},
    "adversary": {"adversary_weight": 1.0},
    "clp": {"clp_weight": 1.0},
    "group+adversary": {
        "dp_weight": 1.0,
        "eo_weight": 1.0,
        "mindiff_weight": 1.0,
        "group_dro_weight": 1.0,
        "loss_parity_weight": 1.0,
        "adversary_weight": 1.0,
    },
    "all": {
        "dp_weight": 1.0,
        "eo_weight": 1.0,
        "mindiff_weight": 1.0,
        "group_dro_weight": 1.0,
        "loss_parity_weight": 1.0,
        "adversary_weight": 1.0,
        "clp_weight": 1.0,
    },
}


def make_batches(tokenizer, n_batches: int, batch_size: int, max_length: int):
    """Collated demo batches with counterfactual pairs kept together (originals followed by their swaps)."""
    from fairtune.cda import augment_split
    from fairtune.config import DataArguments, FairTrainingArguments
    from fairtune.data import encode_datasets
    from fairtune.demo_data import load_demo_dataset
    from fairtune.tasks.classification import ClassificationAdapter

    data_args = DataArguments(
        group_column="gender", max_length=max_length, cda="two_sided", cda_axes=["gender", "names"]
    )
    raw = load_demo_dataset(n_train=n_batches * batch_size)
    raw["train"] = augment_split(raw["train"], data_args, "classification")
    args = FairTrainingArguments(output_dir="/tmp/fairtune-bench", report_to="none", use_cpu=True)
    encoded, enc = encode_datasets(raw, data_args, args)
    adapter = ClassificationAdapter()
    ds = adapter.preprocess(encoded["train"], tokenizer, data_args, "train")
    collate = adapter.collator(tokenizer)
    keep = ["input_ids", "attention_mask", "token_type_ids", "labels", "group", "pair_id", "is_cf"]
    rows = [{k: v for k, v in ds[i].items() if k in keep} for i in range(min(len(ds), n_batches * batch_size))]
    batches = [collate(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    return batches[:n_batches], enc


class SavedBytes:
    """Counts bytes of tensors autograd saves for backward (activation memory)."""

    def __init__(self) -> None:
        self.total = 0

    def pack(self, t: torch.Tensor):
        self.total += t.numel() * t.element_size()
        return t

    def unpack(self, t: torch.Tensor) -> torch.Tensor:
        return t


def build(name: str, model_path: str, enc, tokenizer, device_kw: dict):
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    from fairtune.config import FairTrainingArguments
    from fairtune.trainer import FairTrainer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    common = dict(output_dir=f"/tmp/fairtune-bench/{name}", report_to="none", disable_tqdm=True, **device_kw)
    if name == "vanilla":
        return Trainer(model=model, args=TrainingArguments(**common), processing_class=tokenizer)
    args = FairTrainingArguments(**common, **CONFIGS[name])
    return FairTrainer(
        model=model, args=args, group_names=enc.group_names, label_list=enc.label_list, processing_class=tokenizer
    )


def step(trainer, batch, vanilla: bool, counter: SavedBytes | None = None) -> float:
    """One forward + backward (what differs between the trainers), timed."""
    model = trainer.model
    model.train()
    inputs = {k: v.to(trainer.args.device) for k, v in batch.items()}
    if vanilla:
        inputs = {k: v for k, v in inputs.items() if k not in ("group", "pair_id", "is_cf")}
    if trainer.args.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if counter is not None:
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
            trainer.training_step(model, inputs)
    else:
        trainer.training_step(model, inputs)
    if trainer.args.device.type == "cuda":
        torch.cuda.synchronize()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per config per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", default=None, help="comma-separated subset")
    opts = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from fairtune.config import default_model_path

    model_path = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    batches, enc = make_batches(tokenizer, opts.steps + 1, opts.batch_size, opts.max_length)
    cuda = torch.cuda.is_available()
    device_kw = {} if cuda else {"use_cpu": True}
    names = ["vanilla", *(opts.configs.split(",") if opts.configs else CONFIGS)]
    trainers = {n: build(n, model_path, enc, tokenizer, device_kw) for n in names}
    for t in trainers.values():
        t.current_gradient_accumulation_steps = 1  # set by the training loop, which this benchmark bypasses
    times: dict[str, list[float]] = {n: [] for n in names}
    memory: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for n in names:  # warm-up and memory, one step each
        counter = SavedBytes()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        step(trainers[n], batches[0], n == "vanilla", counter)
        memory[n] = counter.total / 2**20
        if cuda:
            peaks[n] = torch.cuda.max_memory_allocated() / 2**20
    for _ in range(opts.repeats):
        for n in names:  # interleaved: every config sees the same machine state
            for b in batches[1 : opts.steps + 1]:
                times[n].append(step(trainers[n], b, n == "vanilla"))
    base = statistics.median(times["vanilla"])
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"\nFairTrainer vs Trainer, all-MiniLM-L6-v2, batch {opts.batch_size} x {opts.max_length} tokens, "
        f"{opts.repeats} x {opts.steps} interleaved steps, device: {device}\n"
    )
    head = "| config | median step (s) | vs vanilla | saved for backward (MiB) |"
    head += " CUDA peak (MiB) |" if cuda else ""
    print(head)
    print("|---|---|---|---|" + ("---|" if cuda else ""))
    for n in names:
        med = statistics.median(times[n])
        row = f"| {n} | {med:.3f} | {med / base:.3f}x | {memory[n]:.1f} |"
        row += f" {peaks[n]:.0f} |" if cuda else ""
        print(row)
    print("\nTarget: group objectives + adversary at most 1.05x the vanilla step time.")


if __name__ == "__main__":
    main()
