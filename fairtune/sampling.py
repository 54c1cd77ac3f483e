"""A batch sampler that keeps each example and its counterfactual(s) in the same batch (for CLP)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch


def pair_units(pair_ids: Sequence[int]) -> list[list[int]]:
    """Row indices grouped into units: all rows sharing a pair id, or a single unpaired row."""
    units: dict[int, list[int]] = {}
    out: list[list[int]] = []
    for i, p in enumerate(pair_ids):
        if p is None or p < 0:
            out.append([i])
        elif p in units:
            units[p].append(i)
        else:
            units[p] = [i]
            out.append(units[p])
    return out


class PairedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Shuffles pair units (seeded, per epoch) and packs them into batches without splitting a unit.

    With `weights` (one per unit) units are drawn with replacement in proportion to them
    (`group_balance: resample`). Deterministic for a seed and epoch, so resuming replays the same batches.
    """

    def __init__(
        self,
        pair_ids: Sequence[int],
        batch_size: int,
        seed: int = 0,
        weights: Sequence[float] | None = None,
        drop_last: bool = False,
    ) -> None:
        self.units = pair_units(pair_ids)
        if any(len(u) > batch_size for u in self.units):
            raise ValueError(
                f"`per_device_train_batch_size` ({batch_size}) is smaller than a counterfactual group "
                f"({max(len(u) for u in self.units)} rows); raise it so pairs fit in one batch."
            )
        # No public `batch_size`: batches vary in size, and accelerate must shard them as whole batches.
        self._batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.weights = torch.as_tensor(weights, dtype=torch.double) if weights is not None else None
        self.epoch = 0
        self.sampler = _EpochProxy(self)  # accelerate forwards set_epoch to `batch_sampler.sampler` when sharded

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, len(self.units), replacement=True, generator=g).tolist()
        return torch.randperm(len(self.units), generator=g).tolist()

    def _batches(self) -> list[list[int]]:
        batches, current = [], []
        for u in self._order():
            unit = self.units[u]
            if len(current) + len(unit) > self._batch_size:
                batches.append(current)
                current = []
            current.extend(unit)
        if current and not self.drop_last:
            batches.append(current)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()

    def __len__(self) -> int:
        return len(self._batches())


class _EpochProxy:
    """Lets accelerate's sharded loader reach `PairedBatchSampler.set_epoch` through a `.sampler` attribute."""

    def __init__(self, owner: PairedBatchSampler) -> None:
        self._owner = owner

    def set_epoch(self, epoch: int) -> None:
        self._owner.set_epoch(epoch)


def trainer_loader_params(args: Any, collate_fn: Any) -> dict[str, Any]:
    """The DataLoader settings `Trainer` gives its own training loader (workers and their seeding, pinning,
    persistence, prefetch), for a loader built around a batch sampler."""
    from functools import partial

    from transformers.trainer_utils import seed_worker

    params = {
        "collate_fn": collate_fn,
        "num_workers": args.dataloader_num_workers,
        "pin_memory": args.dataloader_pin_memory,
        "persistent_workers": args.dataloader_persistent_workers and args.dataloader_num_workers > 0,
        "prefetch_factor": args.dataloader_prefetch_factor if args.dataloader_num_workers > 0 else None,
        "worker_init_fn": partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
    }
    if getattr(args, "dataloader_multiprocessing_context", None) and args.dataloader_num_workers > 0:
        params["multiprocessing_context"] = args.dataloader_multiprocessing_context
    return params
