"""Exact group statistics across processes: gather per-example quantities with their gradients.

`accelerate.gather` detaches; `torch.distributed.nn.functional.all_gather` keeps the graph, and its backward sums
the gradient that every process computes for each slice. Every process then holds the same global objective L,
each local slice receives world_size * dL/dx, and DDP's gradient averaging turns that back into exactly dL/dtheta.
Rows may differ in number per process (last batch), so tensors are padded to the largest and trimmed after.

The process count follows accelerate's state when it exists: `accelerate launch --multi_gpu` on a machine without
CUDA starts a torch.distributed group, but unless the Trainer runs with `use_cpu: true` accelerate sees one process
per launch (independent runs), and the objectives must then stay local too.

Padding rows: with `even_batches` (accelerate's default) the last round of an epoch is completed with rows from the
start of the epoch so that every process gets a full batch. In rank order the real rows come first and the
padding last, and accelerate records how many are real (`GradientState.remainder`); `padding_keep_mask` turns that
into a per-process mask of the rows to count.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _accelerate_processes() -> int | None:
    """accelerate's process count when its state has been created, else None."""
    try:
        from accelerate.state import PartialState
    except ImportError:  # pragma: no cover - accelerate is a dependency
        return None
    if not PartialState._shared_state:
        return None
    return int(PartialState().num_processes)


def world_size() -> int:
    """Number of processes that share one training run (1 when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    n = _accelerate_processes()
    return dist.get_world_size() if n is None else n


def rank() -> int:
    """This process's index in the run (0 when not distributed)."""
    return dist.get_rank() if world_size() > 1 else 0


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes without gradient (for counts)."""
    if world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def gather_sizes(n: int, device: torch.device | str = "cpu") -> list[int]:
    """Every process's row count, in rank order."""
    if world_size() == 1:
        return [int(n)]
    t = torch.tensor([int(n)], device=device)
    sizes = [torch.zeros_like(t) for _ in range(world_size())]
    dist.all_gather(sizes, t)
    return [int(s) for s in sizes]


class _AllGather(torch.autograd.Function):
    """all_gather whose backward sums every process's gradient for each slice and keeps this process's slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[dist.get_rank()]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` (rows on dim 0) from all processes, in rank order, keeping gradients."""
    if world_size() == 1:
        return tensor
    sizes = gather_sizes(tensor.shape[0], tensor.device)
    longest = max(sizes)
    if tensor.shape[0] < longest:
        pad = tensor.new_zeros((longest - tensor.shape[0],) + tuple(tensor.shape[1:]))
        tensor = torch.cat([tensor, pad])
    if tensor.requires_grad or tensor.is_floating_point():
        parts = list(_AllGather.apply(tensor.contiguous()))
    else:
        parts = [torch.zeros_like(tensor) for _ in sizes]
        dist.all_gather(parts, tensor.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def padding_keep_mask(n_local: int, real_rows: int | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """`[n_local]` bool: which of this process's rows are real when only the first `real_rows` rows of the
    rank-ordered global batch are (the rest being even_batches padding); all True when `real_rows` is None."""
    keep = torch.ones(n_local, dtype=torch.bool, device=device)
    if real_rows is None or world_size() == 1:
        return keep
    offset = sum(gather_sizes(n_local, device)[: rank()])
    return (offset + torch.arange(n_local, device=device)) < int(real_rows)


def even_batches_real_rows(gradient_state) -> int | None:
    """Real rows in the current (last) global batch when accelerate padded it, else None.

    Call it right after the dataloader yields the batch: `end_of_dataloader` is set one batch ahead and the
    `remainder` (`len(dataset) % (batch_size * num_processes)`) is only known while the dataloader is active.
    A remainder of -1 means unknown (no length, or a batch sampler without a fixed batch size).
    """
    if gradient_state is None or not gradient_state.end_of_dataloader:
        return None
    remainder = int(gradient_state.remainder)
    return remainder if remainder > 0 else None
