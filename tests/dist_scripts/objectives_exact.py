"""Every fairness objective on one global batch: objective values and gradients, on 1 or N processes.

Run once as `python objectives_exact.py MODEL_DIR OUT.json` (one process, the whole batch) and once under
`accelerate launch --multi_gpu --num_processes 2 ...` (each process takes its contiguous slice, as accelerate's
sharded sampler does); `tests/test_distributed.py` compares the two files. Each case builds a fresh FairTrainer
(same seed: same adversary) and runs one forward and backward through the model prepared by the Trainer's own
accelerator (DDP on several processes), so the gradients are the ones an optimizer step would use.
"""

from __future__ import annotations

import json
import sys
import tempfile

import torch
from accelerate import PartialState
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from fairtune.config import FairTrainingArguments
from fairtune.distributed import all_sum, rank, world_size
from fairtune.trainer import FairTrainer

GLOBAL_BATCH = 16
CASES: dict[str, dict] = {
    "dp": {"dp_weight": 1.0},
    "eo": {"eo_weight": 1.0},
    "mindiff": {"mindiff_weight": 1.0, "mindiff_bandwidth": 0.5},
    "group_dro": {"group_dro_weight": 1.0, "group_dro_step_size": 0.5},
    "loss_parity": {"loss_parity_weight": 1.0},
    "clp": {"clp_weight": 1.0},
    "adversary": {"adversary_weight": 1.0, "adversary_hidden_size": 16},
    "adversary_label_conditioned": {
        "adversary_weight": 1.0,
        "adversary_hidden_size": 16,
        "adversary_label_conditioned": True,
        "num_adversaries": 2,
    },
    "adversary_steps": {"adversary_weight": 1.0, "adversary_hidden_size": 16, "adversary_steps": 3},
    "adversary_eo": {  # on the predicted log-probabilities, label-conditioned, cells balanced over the training set
        "adversary_weight": 1.0,
        "adversary_hidden_size": 16,
        "adversary_input": "logits",
        "adversary_label_conditioned": True,
        "adversary_balance": True,
    },
    "all": {
        "dp_weight": 0.5,
        "eo_weight": 0.5,
        "mindiff_weight": 0.5,
        "group_dro_weight": 0.5,
        "loss_parity_weight": 0.5,
        "clp_weight": 0.5,
        "adversary_weight": 0.5,
        "adversary_hidden_size": 16,
    },
}
NAMES = ["john", "mary", "james", "linda"]
TOPICS = ["operates at the hospital", "cares for patients", "builds bridges", "reads books", "likes music"]


def global_rows(layout: str) -> list[dict]:
    """16 rows; each half (one process's slice on 2 processes) holds 2 counterfactual pairs.

    `mixed`: both groups and both labels in each half. `skewed`: the first half holds only group 0 (male), so on 2
    processes rank 0 sees a single group and only the gathered batch gives the global statistics.
    """
    rows = []
    for i in range(GLOBAL_BATCH):
        half = i // (GLOBAL_BATCH // 2)
        group = (i % 2) if (layout == "mixed" or half == 1) else 0
        label = (i // 2) % 2 if layout == "mixed" else (i // 3) % 2
        name = NAMES[2 * group + (i // 4) % 2]
        words = "she" if group else "he"
        text = f"{words} {TOPICS[(i * 3) % len(TOPICS)]} , said {name}"
        rows.append({"text": text, "labels": label, "group": group, "pair_id": -1, "is_cf": 0})
    # counterfactual pairs inside each half: row 2k+1 is the counterfactual of row 2k for k in {0, 1} of each half
    for start in (0, GLOBAL_BATCH // 2):
        for k in (0, 2):
            a, b = start + k, start + k + 1
            rows[b]["text"] = (
                rows[a]["text"].replace("he ", "she ", 1).replace("john", "mary").replace("james", "linda")
            )
            rows[b]["labels"] = rows[a]["labels"]
            rows[a]["pair_id"] = rows[b]["pair_id"] = start + k
            rows[b]["is_cf"] = 1
    return rows


def collate(rows: list[dict], tok) -> dict[str, torch.Tensor]:
    """Tokenize to a fixed length so that local and global batches pad alike."""
    enc = tok([r["text"] for r in rows], padding="max_length", max_length=24, truncation=True, return_tensors="pt")
    batch = dict(enc)
    for key in ("labels", "group", "pair_id", "is_cf"):
        batch[key] = torch.tensor([r[key] for r in rows], dtype=torch.long)
    return batch


def spread(model: torch.nn.Module) -> None:
    """Perturb the random weights (same on every process) so that scores differ between rows and groups."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
            if name.startswith(("score.", "classifier.")):
                p.mul_(2.0)


def run_case(model_dir: str, layout: str, overrides: dict, out_dir: str) -> dict:
    """One forward + backward of a fresh FairTrainer on this process's slice of the global batch."""
    world = world_size()
    per_device = GLOBAL_BATCH // world
    args = FairTrainingArguments(
        output_dir=out_dir,
        per_device_train_batch_size=per_device,
        use_cpu=True,
        report_to="none",
        seed=0,
        disable_tqdm=True,
        min_group_count=0,
        # DDP's unused-parameter search rebuilds the output dataclass; fairtune's extra keys need the
        # representation.py patch for that (covered by test_ddp_training_end_to_end), not needed here.
        ddp_find_unused_parameters=False,
        **overrides,
    )
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    spread(model)
    train = None
    if overrides.get("adversary_balance"):  # the balance weights come from the training set's cell counts
        from datasets import Dataset

        train = Dataset.from_list([{"group": r["group"], "labels": r["labels"]} for r in global_rows(layout)])
    trainer = FairTrainer(
        model=model, args=args, group_names=["male", "female"], label_list=["a", "b"], train_dataset=train
    )
    trainer.current_gradient_accumulation_steps = 1
    rows = global_rows(layout)[rank() * per_device : (rank() + 1) * per_device]
    batch = {k: v.to(args.device) for k, v in collate(rows, tok).items()}
    wrapped = trainer.accelerator.prepare_model(trainer.model)
    wrapped.train()
    counts = trainer.count_items([batch], args.device)
    loss = trainer.compute_loss(wrapped, dict(batch))
    loss.backward()
    logs = {k: v[-1] for k, v in trainer._metrics["train"].items() if v}
    grads = {
        n: p.grad.detach().flatten().tolist()
        for n, p in trainer.model.named_parameters()
        if p.requires_grad and p.grad is not None
    }
    return {
        "loss": float(all_sum(loss.detach().reshape(1))[0]) / world,
        "logs": logs,
        "grads": grads,
        "counts": {k: float(v) for k, v in counts.items()},
    }


def main() -> None:
    """Run every case on both layouts and write the results (rank 0)."""
    model_dir, out_path = sys.argv[1], sys.argv[2]
    torch.use_deterministic_algorithms(True)
    PartialState(cpu=True)  # gloo on CPU, the process group the Trainer will use
    results: dict = {"world_size": world_size()}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("mixed", "skewed"):
            for name, overrides in CASES.items():
                results[f"{layout}/{name}"] = run_case(model_dir, layout, overrides, tmp)
        # The same cases with per-process statistics (no gather): what a naive implementation computes. The test
        # checks that these differ on several processes, so the comparison above can tell the two apart.
        import fairtune.trainer as trainer_module

        gather = trainer_module.gather_with_grad
        trainer_module.gather_with_grad = lambda t: t
        try:
            for name in ("dp", "eo", "loss_parity", "mindiff"):
                results[f"per_process/{name}"] = run_case(model_dir, "skewed", CASES[name], tmp)
        finally:
            trainer_module.gather_with_grad = gather
    if rank() == 0:
        with open(out_path, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
