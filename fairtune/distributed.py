"""Exact group statistics across processes: gather per-example quantities with their gradients.

`accelerate.gather` detaches; `torch.distributed.nn.functional.all_gather` keeps the graph, and its backward sums
the gradient that every process computes for each slice. Every process then holds the same global objective L,
each local slice receives world_size * dL/dx, and DDP's gradient averaging turns that back into exactly dL/dtheta.
Rows may differ in number per process (last batch), so tensors are padded to the largest and trimmed after.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes without gradient (for counts)."""
    if world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` (rows on dim 0) from all processes, in rank order, keeping gradients."""
    if world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    n = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    if tensor.shape[0] < longest:
        pad = tensor.new_zeros((longest - tensor.shape[0],) + tuple(tensor.shape[1:]))
        tensor = torch.cat([tensor, pad])
    if tensor.requires_grad or tensor.is_floating_point():
        parts = all_gather(tensor.contiguous())
    else:
        parts = [torch.zeros_like(tensor) for _ in sizes]
        dist.all_gather(parts, tensor.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])
