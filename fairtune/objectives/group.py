"""Group objectives: soft demographic parity, soft equalized odds, MinDiff MMD, group DRO and loss parity.

Each is a function of a `FairBatch` (per-example losses, probabilities, labels, groups), so it runs unchanged on
any task whose adapter provides those quantities. None of them is a sum over examples: under gradient
accumulation each is computed on a micro-batch (gathered over all processes), not on the accumulated batch.
A batch with fewer than two groups present contributes an exact 0 that stays connected to the graph.
"""

from __future__ import annotations

from typing import Any

import torch

from fairtune.objectives.base import FairBatch, Objective, register_objective, zero_like_graph
from fairtune.objectives.mmd import one_vs_rest_mmd

MINDIFF_CONVENTIONS = ("fairtune", "model_remediation")


def _eval_classes(num_classes: int) -> list[int]:
    """Binary data looks at the positive class only; multiclass at every class (one-vs-rest)."""
    return [1] if num_classes == 2 else list(range(num_classes))


def _group_means(values: torch.Tensor, groups: torch.Tensor, mask: torch.Tensor, num_groups: int):
    """Mean of `values` per group over rows in `mask`; returns (means [G, ...], counts [G])."""
    g = torch.where(mask, groups, torch.full_like(groups, num_groups))  # out-of-mask rows go to a spare slot
    counts = torch.bincount(g, minlength=num_groups + 1)[:num_groups].to(values.dtype)
    shape = (num_groups + 1,) + tuple(values.shape[1:])
    sums = torch.zeros(shape, dtype=values.dtype, device=values.device).index_add(0, g, values)[:num_groups]
    denom = counts.clamp(min=1).view(-1, *([1] * (values.dim() - 1)))
    return sums / denom, counts


def _max_gap(rates: torch.Tensor, counts: torch.Tensor) -> torch.Tensor | None:
    """max - min of `rates` over groups with at least one row; None with fewer than two such groups."""
    present = counts > 0
    if int(present.sum()) < 2:
        return None
    r = rates[present]
    return r.max() - r.min()


def demographic_parity_gap(batch: FairBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Soft DP gap: per class, the largest difference in mean predicted probability between groups (averaged).

    A differentiable relaxation of the demographic parity difference (Calders & Verwer 2010; Zafar et al. 2017).
    """
    probs, valid = batch.probs, batch.valid
    gaps = []
    for c in _eval_classes(probs.shape[1]):
        rates, counts = _group_means(probs[:, c], batch.groups, valid, batch.num_groups)
        gap = _max_gap(rates, counts)
        if gap is not None:
            gaps.append(gap)
    if not gaps:
        return zero_like_graph(probs), {"dp_gap": 0.0}
    loss = torch.stack(gaps).mean()
    return loss, {"dp_gap": float(loss.detach())}


def equalized_odds_gap(batch: FairBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Soft EO gap: per class, the between-group gap of mean probability among positives (TPR) plus among
    negatives (FPR), averaged over classes (binary: the positive class). Relaxes Hardt et al. 2016."""
    probs, labels, valid = batch.probs, batch.labels, batch.valid
    terms, tpr_gaps, fpr_gaps = [], [], []
    for c in _eval_classes(probs.shape[1]):
        pos, neg = valid & (labels == c), valid & (labels != c)
        tpr, n_pos = _group_means(probs[:, c], batch.groups, pos, batch.num_groups)
        fpr, n_neg = _group_means(probs[:, c], batch.groups, neg, batch.num_groups)
        t, f = _max_gap(tpr, n_pos), _max_gap(fpr, n_neg)
        if t is not None:
            tpr_gaps.append(t)
        if f is not None:
            fpr_gaps.append(f)
        if t is not None or f is not None:
            terms.append((t if t is not None else 0.0) + (f if f is not None else 0.0))
    if not terms:
        return zero_like_graph(probs), {"eo_gap": 0.0}
    loss = torch.stack([torch.as_tensor(t, device=probs.device) for t in terms]).mean() + zero_like_graph(probs)
    logs = {"eo_gap": float(loss.detach())}
    if tpr_gaps:
        logs["eo_tpr_gap"] = float(torch.stack(tpr_gaps).mean().detach())
    if fpr_gaps:
        logs["eo_fpr_gap"] = float(torch.stack(fpr_gaps).mean().detach())
    return loss, logs


def _kernel(a: torch.Tensor, b: torch.Tensor, kind: str, bandwidth: float) -> torch.Tensor:
    if kind == "gaussian":
        return torch.exp(-torch.cdist(a, b, p=2).pow(2) / (2 * bandwidth**2))
    return torch.exp(-torch.cdist(a, b, p=1) / bandwidth)


def mmd2(a: torch.Tensor, b: torch.Tensor, kind: str = "gaussian", bandwidth: float = 0.1) -> torch.Tensor:
    """Biased estimate of the squared maximum mean discrepancy between two samples (rows are points)."""
    return (
        _kernel(a, a, kind, bandwidth).mean()
        + _kernel(b, b, kind, bandwidth).mean()
        - 2 * _kernel(a, b, kind, bandwidth).mean()
    )


def mindiff_mmd(
    batch: FairBatch, kernel: str = "gaussian", bandwidth: float = 0.1, label: int | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """MinDiff (Prost et al. 2019): MMD between each group's predicted-score distribution and the rest's.

    With `label` set, only rows of that label take part (e.g. negatives, for an equal-opportunity flavour).
    Binary scores use the positive-class probability; multiclass the whole probability vector.
    """
    probs = batch.probs
    scores = probs[:, 1:2] if probs.shape[1] == 2 else probs
    mask = batch.valid if label is None else batch.valid & (batch.labels == label)
    present = [g for g in range(batch.num_groups) if int((mask & (batch.groups == g)).sum()) > 0]
    if len(present) < 2:
        return zero_like_graph(probs), {"mindiff_mmd": 0.0}
    terms = []
    for g in present:
        inside = mask & (batch.groups == g)
        outside = mask & (batch.groups != g)
        terms.append(mmd2(scores[inside], scores[outside], kernel, bandwidth))
        if len(present) == 2:  # symmetric: one comparison is enough
            break
    loss = torch.stack(terms).mean()
    return loss, {"mindiff_mmd": float(loss.detach())}


def mindiff_model_remediation(
    batch: FairBatch, kernel: str = "gaussian", kernel_length: float = 0.1, label: int | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """MinDiff with model-remediation's `MMDLoss` conventions, one group against the rest (mean over groups).

    Same scores and label restriction as `mindiff_mmd`; kernels and weighting as `fairtune.objectives.mmd`.
    """
    probs = batch.probs
    scores = probs[:, 1:2] if probs.shape[1] == 2 else probs
    mask = batch.valid if label is None else batch.valid & (batch.labels == label)
    groups = torch.where(mask, batch.groups, torch.full_like(batch.groups, -1))
    loss = one_vs_rest_mmd(scores, groups, kernel=kernel, kernel_length=kernel_length)
    return loss, {"mindiff_mmd": float(loss.detach())}


def group_losses(batch: FairBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean task loss per group and the number of rows per group."""
    return _group_means(batch.losses, batch.groups, batch.valid, batch.num_groups)


def loss_parity(batch: FairBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean absolute difference between each present group's mean loss and the mean loss of all grouped rows."""
    means, counts = group_losses(batch)
    present = counts > 0
    if int(present.sum()) < 2:
        return zero_like_graph(batch.losses), {"loss_parity": 0.0}
    overall = batch.losses[batch.valid].mean()
    loss = (means[present] - overall).abs().mean()
    return loss, {"loss_parity": float(loss.detach())}


class GroupDRO:
    """Group DRO (Sagawa et al. 2020): minimise the q-weighted group losses, q updated by exponentiated gradient.

    The state `q` is identical on every process (it is updated from gathered losses) and saved in checkpoints.
    """

    def __init__(self, num_groups: int, step_size: float = 0.01) -> None:
        self.num_groups = num_groups
        self.step_size = step_size
        self.q = torch.full((num_groups,), 1.0 / num_groups)

    def __call__(self, batch: FairBatch, update: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
        means, counts = group_losses(batch)
        present = counts > 0
        if int(present.sum()) == 0:
            return zero_like_graph(batch.losses), {"group_dro": 0.0}
        q = self.q.to(means.device)
        if update:
            q = q * torch.exp(self.step_size * means.detach() * present)
            q = q / q.sum()
            self.q = q.detach().cpu()
        loss = (q * means).sum()
        logs = {"group_dro": float(loss.detach())}
        logs.update({f"group_dro_q_{g}": float(self.q[g]) for g in range(self.num_groups)})
        return loss, logs

    def state_dict(self) -> dict:
        return {"q": self.q.tolist(), "step_size": self.step_size}

    def load_state_dict(self, state: dict) -> None:
        self.q = torch.tensor(state["q"], dtype=torch.float32)


# ---- registered objectives (recipe keys) ----------------------------------------------------------------------


@register_objective("dp")
class DemographicParity(Objective):
    """Soft demographic parity: between-group gap in mean predicted probability per class (Dwork et al. 2012)."""

    needs = ("probs", "groups")
    weight_field = "dp_weight"
    card_name = "Demographic parity penalty"
    card_text = (
        "penalises differences between groups in the average predicted probability of each class "
        "(a differentiable form of demographic parity)."
    )
    tag = "demographic-parity"
    citations = ("dwork2012",)

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        return demographic_parity_gap(batch)


@register_objective("eo")
class EqualizedOdds(Objective):
    """Soft equalized odds: between-group gaps in mean probability among positives and negatives (Hardt et al.
    2016)."""

    needs = ("probs", "labels", "groups")
    weight_field = "eo_weight"
    card_name = "Equalized odds penalty"
    card_text = (
        "penalises differences between groups in the average predicted probabilities among examples with the same "
        "true label (a differentiable form of equalized odds)."
    )
    tag = "equalized-odds"
    citations = ("hardt2016",)

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        return equalized_odds_gap(batch)


@register_objective("mindiff")
class MinDiff(Objective):
    """MinDiff: kernel MMD between each group's score distribution and the rest's (Prost et al. 2019).

    `mindiff_convention: fairtune` (default) uses exp(-d^2 / (2 sigma^2)) with sigma = `mindiff_bandwidth` and the
    L1 distance in the Laplacian; `model_remediation` uses TF model-remediation's `MMDLoss` exactly
    (`fairtune.objectives.mmd`): exp(-d^2 / l^2) and exp(-||d||_2 / l) with l = `mindiff_bandwidth`. The two
    Gaussians agree when l = sigma * sqrt(2); the Laplacians agree on binary tasks (one score per row).
    """

    needs = ("probs", "labels", "groups")
    weight_field = "mindiff_weight"
    option_fields = ("mindiff_kernel", "mindiff_bandwidth", "mindiff_label", "mindiff_convention")
    card_name = "MinDiff"
    card_text = (
        "matches the distributions of model scores across groups with a kernel maximum mean discrepancy penalty."
    )
    tag = "mindiff"
    citations = ("prost2019",)

    def __init__(
        self,
        *,
        mindiff_kernel: str = "gaussian",
        mindiff_bandwidth: float = 0.1,
        mindiff_label: int | None = None,
        mindiff_convention: str = "fairtune",
        **context: Any,
    ) -> None:
        super().__init__(**context)
        if mindiff_kernel not in ("gaussian", "laplacian"):
            raise ValueError(f"`mindiff_kernel`: unknown kernel {mindiff_kernel!r}; choose gaussian or laplacian.")
        if mindiff_convention not in MINDIFF_CONVENTIONS:
            raise ValueError(
                f"`mindiff_convention`: unknown value {mindiff_convention!r}; choose {' or '.join(MINDIFF_CONVENTIONS)}."
            )
        self.kernel, self.bandwidth, self.label = mindiff_kernel, float(mindiff_bandwidth), mindiff_label
        self.convention = mindiff_convention

    @classmethod
    def card_settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The option fields that are set; the convention only when it is not fairtune's default."""
        out = super().card_settings(config)
        if out.get("mindiff_convention") == "fairtune":
            out.pop("mindiff_convention")
        return out

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.convention == "fairtune":
            return mindiff_mmd(batch, self.kernel, self.bandwidth, self.label)
        return mindiff_model_remediation(batch, self.kernel, self.bandwidth, self.label)


@register_objective("group_dro")
class GroupDROObjective(Objective):
    """Group DRO: the q-weighted group losses, q raised on the worst-off groups (Sagawa et al. 2020)."""

    needs = ("losses", "groups")
    weight_field = "group_dro_weight"
    option_fields = ("group_dro_step_size",)
    card_name = "Group DRO"
    card_text = "weights each group's loss by an online estimate of the worst-off groups, so training focuses on them."
    tag = "group-dro"
    citations = ("sagawa2020",)

    def __init__(self, *, group_dro_step_size: float = 0.01, **context: Any) -> None:
        super().__init__(**context)
        self.dro = GroupDRO(self.num_groups, group_dro_step_size)

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        value, logs = self.dro(batch, update=batch.training)
        names = self.group_names
        return value, {
            (f"group_dro_q_{names[int(k.rsplit('_', 1)[1])]}" if k.startswith("group_dro_q_") and names else k): v
            for k, v in logs.items()
        }

    @property
    def q(self) -> torch.Tensor:
        """The current group weights."""
        return self.dro.q

    def state_dict(self) -> dict[str, Any]:
        return self.dro.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dro.load_state_dict(state)


@register_objective("loss_parity")
class LossParity(Objective):
    """Loss parity: mean absolute gap between each group's mean task loss and the overall mean."""

    needs = ("losses", "groups")
    weight_field = "loss_parity_weight"
    card_name = "Loss parity"
    card_text = "penalises differences between groups in the average task loss."
    tag = "loss-parity"

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        return loss_parity(batch)
