"""One epoch whose last global batch is incomplete: 1 process at batch 2B against N processes at batch B.

`python train_padding.py MODEL_DIR OUT.json ROWS` or under `accelerate launch --multi_gpu --num_processes 2`.
With ROWS not a multiple of the global batch, accelerate's `even_batches` completes the last round with rows from
the start of the epoch; trained with SGD, the final weights agree only if those repeats are not counted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch
from accelerate import PartialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: conftest and helpers

from conftest import biased_rows  # noqa: E402
from helpers import build_trainer  # noqa: E402

from fairtune.distributed import rank, world_size  # noqa: E402

GLOBAL_BATCH = 8


def main() -> None:
    """Train one epoch and write the final weights and the logged objective values (rank 0)."""
    model_dir, out_path, n_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    PartialState(cpu=True)
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(
            model_dir,
            biased_rows(n_rows, 0.8, seed=3),
            None,
            tmp,
            per_device_train_batch_size=GLOBAL_BATCH // world_size(),
            optim="sgd",
            learning_rate=0.5,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            max_grad_norm=0.0,
            num_train_epochs=1,
            adversary_weight=1.0,
            adversary_hidden_size=16,
            adversary_lr=0.5,
            dp_weight=1.0,
            loss_parity_weight=1.0,
            min_group_count=0,
            ddp_find_unused_parameters=False,
            data_seed=0,
        )
        trainer.train()
        params = {n: p.detach().flatten().tolist() for n, p in trainer.model.named_parameters()}
        logs = [h for h in trainer.state.log_history if "task_loss" in h]
    if rank() == 0:
        with open(out_path, "w") as f:
            json.dump({"world_size": world_size(), "params": params, "logs": logs}, f)


if __name__ == "__main__":
    main()
