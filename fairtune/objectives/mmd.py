"""Weighted maximum mean discrepancy with model-remediation's MinDiff conventions (pure functions, no config).

`tensorflow_model_remediation.min_diff.losses.MMDLoss` compares the predictions of a group (`membership == 1`)
with the others' (`membership == 0`):

    loss = mean_w k(pos, pos) - 2 mean_w k(pos, neg) + mean_w k(neg, neg)

where each mean is weighted by w_i w_j over the pairs it covers (the weights are first normalised to sum to one,
which cancels inside each mean) and the kernels are

    gaussian:  k(x, y) = exp(-||x - y||_2^2 / l^2)
    laplacian: k(x, y) = exp(-||x - y + 1e-8||_2 / l)     (Euclidean norm, even for multi-dimensional scores)

with kernel length `l` (default 0.1). This is the squared MMD (model-remediation does not take the root: its
gradient blows up near 0). A group without rows, or all-zero weights, gives 0.

Mapping from fairtune's older `objectives.group.mindiff_mmd` (kept unchanged there until the lead rewires it):
its Gaussian kernel is exp(-||x - y||^2 / (2 sigma^2)), so its `bandwidth=sigma` equals a kernel length
`l = sigma * sqrt(2)` here (`kernel_length_from_bandwidth`); its Laplacian used the L1 distance, equal to this one
only for one-dimensional scores (binary tasks).
"""

from __future__ import annotations

import math

import torch

KERNELS = ("gaussian", "laplacian")
_LAPLACE_EPS = 1.0e-8


def kernel_length_from_bandwidth(bandwidth: float) -> float:
    """model-remediation's Gaussian `kernel_length` equal to fairtune's old `bandwidth` (sigma): l = sigma sqrt 2."""
    return float(bandwidth) * math.sqrt(2.0)


def kernel_matrix(
    x: torch.Tensor, y: torch.Tensor, kind: str = "gaussian", kernel_length: float = 0.1
) -> torch.Tensor:
    """`[N, M]` kernel values between rows of `x` `[N, D]` and `y` `[M, D]` (model-remediation's kernels)."""
    if kind in ("gaussian", "gauss"):
        return torch.exp(-(x[:, None, :] - y[None, :, :]).pow(2).sum(-1) / kernel_length**2)
    if kind in ("laplacian", "laplace"):
        return torch.exp(
            -torch.linalg.vector_norm(x[:, None, :] - y[None, :, :] + _LAPLACE_EPS, dim=-1) / kernel_length
        )
    raise ValueError(f"kernel must be one of {KERNELS}, got {kind!r}")


def _weighted_mean(k: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    ww = wa[:, None] * wb[None, :]
    total = ww.sum()
    return torch.where(total > 0, (ww * k).sum() / total.clamp(min=torch.finfo(k.dtype).tiny), k.new_zeros(()))


def weighted_mmd(
    predictions: torch.Tensor,
    membership: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
    *,
    kernel: str = "gaussian",
    kernel_length: float = 0.1,
) -> torch.Tensor:
    """model-remediation's `MMDLoss` between rows with `membership == 1` and rows with `membership == 0`.

    Args:
        predictions: `[N]` or `[N, D]` scores (apply any transform, e.g. sigmoid, before calling).
        membership: `[N]` or `[N, 1]` 0/1 membership of the sensitive group; other values take no part.
        sample_weight: optional `[N]` or `[N, 1]` non-negative weights.
        kernel: `gaussian` or `laplacian`; kernel_length: `l` above.
    """
    x = predictions.reshape(len(predictions), -1).float()
    m = membership.reshape(-1).float()
    w = torch.ones_like(m) if sample_weight is None else torch.as_tensor(sample_weight).reshape(-1).to(x)
    if len(w) != len(x) or len(m) != len(x):
        raise ValueError(
            f"predictions, membership and sample_weight need one row each, got {len(x)}, {len(m)}, {len(w)}"
        )
    if bool((w < 0).any()):
        raise ValueError("sample_weight cannot contain any negative weights")
    k = kernel_matrix(x, x, kernel, kernel_length)
    wp, wn = w * (m == 1).to(w), w * (m == 0).to(w)
    return _weighted_mean(k, wp, wp) - 2 * _weighted_mean(k, wp, wn) + _weighted_mean(k, wn, wn)


def one_vs_rest_mmd(
    predictions: torch.Tensor,
    groups: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
    *,
    kernel: str = "gaussian",
    kernel_length: float = 0.1,
) -> torch.Tensor:
    """MinDiff for any number of groups: the mean over present groups of MMD(group, rest); two groups: one term.

    `groups` holds ids >= 0 (rows with a negative id take no part). With fewer than two groups present the result
    is an exact 0 that stays connected to the graph of `predictions`.
    """
    g = groups.reshape(-1)
    present = [int(v) for v in torch.unique(g[g >= 0]).tolist()]
    if len(present) < 2:
        return predictions.sum() * 0.0
    terms = []
    for gid in present[: 1 if len(present) == 2 else None]:
        membership = torch.where(g == gid, 1.0, torch.where(g >= 0, 0.0, -1.0))
        terms.append(weighted_mmd(predictions, membership, sample_weight, kernel=kernel, kernel_length=kernel_length))
    return torch.stack(terms).mean()
