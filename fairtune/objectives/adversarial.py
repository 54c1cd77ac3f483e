"""Adversarial debiasing: a gradient-reversal adversary predicts the group from the model's representation.

Ganin & Lempitsky 2015 (gradient reversal), Elazar & Goldberg 2018 (adversarial removal of demographic
attributes from text), Zhang et al. 2018 (conditioning the adversary on the true label targets equalized odds
rather than parity), Han et al. 2021 (several adversaries kept diverse by an orthogonality term).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fairtune.objectives.base import FairBatch, Objective, Ratio, register_objective


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.strength * grad, None


def grad_reverse(x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by `-strength` backward."""
    return _GradReverse.apply(x, strength)


def ganin_schedule(progress: float) -> float:
    """Reversal-strength ramp 2/(1+exp(-10p)) - 1 from 0 to 1 over training (Ganin & Lempitsky 2015)."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class Adversary(nn.Module):
    """`num_adversaries` MLPs predicting the group (per class when label-conditioned) from a representation.

    Output logits have shape `[M, K, B, L, G]`: M = 1 in `reversal` mode (logits through the gradient-reversal
    layer) and 2 in `confusion` mode (logits on the detached representation, which train the adversary only, then
    logits with frozen adversary weights, which train the encoder towards a uniform group prediction: Alvi et al.
    2018), K adversaries, B rows, L label slots (1, or the number of classes when label-conditioned), G groups.
    """

    def __init__(
        self,
        input_size: int,
        num_groups: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        num_adversaries: int = 1,
        num_labels: int = 1,
        mode: str = "reversal",
    ) -> None:
        super().__init__()
        if mode not in ("reversal", "confusion"):
            raise ValueError(f"`adversary_mode`: unknown mode {mode!r}; choose reversal or confusion.")
        self.num_groups, self.num_labels, self.mode = num_groups, num_labels, mode
        self.strength = 1.0  # set by the trainer each step
        heads = []
        for _ in range(num_adversaries):
            layers: list[nn.Module] = []
            width = input_size
            for _ in range(num_layers):
                layers += [nn.Linear(width, hidden_size), nn.ReLU()]
                width = hidden_size
            layers.append(nn.Linear(width, num_groups * num_labels))
            heads.append(nn.Sequential(*layers))
        self.heads = nn.ModuleList(heads)

    def _logits(self, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        if params is None:
            out = torch.stack([h(x) for h in self.heads])
        else:
            out = torch.func.functional_call(self, params, (x,), kwargs={"_raw": True})
        return out.view(len(self.heads), x.shape[0], self.num_labels, self.num_groups)

    def forward(self, representation: torch.Tensor, _raw: bool = False) -> torch.Tensor:
        if _raw:  # the plain heads, for functional_call with frozen weights
            return torch.stack([h(representation) for h in self.heads])
        x = representation.float()
        if self.mode == "reversal":
            return self._logits(grad_reverse(x, self.strength)).unsqueeze(0)
        frozen = {name: p.detach() for name, p in self.named_parameters()}
        return torch.stack([self._logits(x.detach()), self._logits(x, frozen)])

    def orthogonality(self) -> torch.Tensor:
        """Sum over adversary pairs of ||W_i W_j^T||_F^2 on first-layer weights (0 with one adversary)."""
        ws = [h[0].weight for h in self.heads]
        total = ws[0].sum() * 0.0
        for i in range(len(ws)):
            for j in range(i + 1, len(ws)):
                total = total + (ws[i] @ ws[j].T).pow(2).sum()
        return total


def adversary_loss(
    logits: torch.Tensor,
    groups: torch.Tensor,
    labels: torch.Tensor | None = None,
    row_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of every adversary over rows with a group, and the number of correct predictions.

    Returns (sum of per-row losses averaged over adversaries, number of correct predictions averaged over
    adversaries, number of rows with a group). Label-conditioned logits pick the head of each row's true label.
    `row_weights` scale each row's loss (see `cell_balance_weights`); counts stay unweighted.
    """
    k, b, num_slots, g = logits.shape
    if num_slots > 1:
        if labels is None:
            raise ValueError("a label-conditioned adversary needs class labels in the batch")
        idx = labels.clamp(min=0).view(1, b, 1, 1).expand(k, b, 1, g)
        logits = logits.gather(2, idx)
    logits = logits[:, :, 0, :]  # [K, B, G]
    valid = groups >= 0
    target = groups.clamp(min=0)
    ce = F.cross_entropy(logits.reshape(k * b, g), target.repeat(k), reduction="none").view(k, b)
    if row_weights is not None:
        ce = ce * row_weights.to(ce.dtype)
    loss_sum = (ce * valid).sum() / k
    correct = ((logits.argmax(-1) == target) & valid).sum() / k
    return loss_sum, correct.detach().float(), valid.sum().detach().float()


def cell_balance_weights(groups: torch.Tensor, labels: torch.Tensor | None, num_groups: int) -> torch.Tensor:
    """A `[num_labels, num_groups]` table of weights n / (cells * n_cell) from the training data's (label, group)
    counts (one label slot without labels): every non-empty cell then weighs the same in the adversary's loss, so
    on skewed data the adversary must beat balanced chance, not the majority group (whose loss is near its floor
    and whose gradient nearly vanishes). Ungrouped rows are not counted."""
    groups = groups.long()
    labels = torch.zeros_like(groups) if labels is None else labels.long()
    keep = (groups >= 0) & (labels >= 0)
    num_labels = int(labels[keep].max()) + 1 if keep.any() else 1
    counts = torch.zeros(num_labels, num_groups, dtype=torch.float64)
    counts.index_put_((labels[keep], groups[keep]), torch.ones(int(keep.sum()), dtype=torch.float64), accumulate=True)
    cells = int((counts > 0).sum())
    table = torch.where(counts > 0, counts.sum() / (cells * counts.clamp(min=1)), torch.zeros_like(counts))
    return table.float()


def confusion_loss(
    logits: torch.Tensor,
    groups: torch.Tensor,
    labels: torch.Tensor | None = None,
    row_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Summed cross-entropy against the uniform distribution over groups (rows with a group), averaged over
    adversaries: minimal when the adversary cannot tell the groups apart (Alvi et al. 2018)."""
    k, b, num_slots, g = logits.shape
    if num_slots > 1:
        idx = labels.clamp(min=0).view(1, b, 1, 1).expand(k, b, 1, g)
        logits = logits.gather(2, idx)
    logp = logits[:, :, 0, :].log_softmax(-1)  # [K, B, G]
    per_row = -logp.mean(-1)  # CE with a uniform target
    if row_weights is not None:
        per_row = per_row * row_weights.to(per_row.dtype)
    return (per_row * (groups >= 0)).sum() / k


@register_objective("adversary")
class AdversarialDebiasing(Objective):
    """Adversarial debiasing: adversaries predict the group; their gradient is reversed into the model (Ganin &
    Lempitsky 2015; Elazar & Goldberg 2018; Zhang et al. 2018 on the predictions)."""

    needs = ("adversary_logits", "groups")
    gathered = False
    weight_field = "adversary_weight"
    option_fields = (
        "adversary_hidden_size",
        "adversary_layers",
        "num_adversaries",
        "adversary_label_conditioned",
        "adversary_mode",
        "adversary_orthogonality_weight",
    )
    card_fields = (
        "num_adversaries",
        "adversary_label_conditioned",
        "adversary_input",
        "adversary_balance",
        "adversary_steps",
    )
    card_name = "Adversarial debiasing"
    card_text = (
        "adversaries predict the protected group from the pooled representation; their gradient is reversed into "
        "the encoder, so the representation keeps less group information."
    )
    card_text_logits = (
        "adversaries predict the protected group from the model's predicted class probabilities (per true class "
        "when label-conditioned); their gradient is reversed into the model, so its decisions carry less group "
        "information."
    )
    tag = "adversarial-debiasing"
    citations = ("ganin2015",)

    def __init__(
        self,
        *,
        input_size: int,
        num_model_labels: int = 1,
        adversary_hidden_size: int = 256,
        adversary_layers: int = 1,
        num_adversaries: int = 1,
        adversary_label_conditioned: bool = False,
        adversary_mode: str = "reversal",
        adversary_orthogonality_weight: float = 0.1,
        seed: int = 0,
        **context: Any,
    ) -> None:
        """Build the adversary module (seeded: identical on every process); `module` goes into the FairModel."""
        super().__init__(**context)
        self.label_conditioned = bool(adversary_label_conditioned)
        self.orthogonality_weight = float(adversary_orthogonality_weight)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = Adversary(
                input_size=input_size,
                num_groups=self.num_groups,
                hidden_size=adversary_hidden_size,
                num_layers=adversary_layers,
                num_adversaries=num_adversaries,
                num_labels=num_model_labels if self.label_conditioned else 1,
                mode=adversary_mode,
            )

    def combine(self, value: torch.Tensor, weight: float) -> torch.Tensor:
        """The weight is the reversal strength, applied by the gradient-reversal layer inside the model."""
        return value

    def count_items(self, batch: dict[str, Any]) -> int:
        """Rows with a group."""
        groups = batch.get("group")
        return int((groups >= 0).sum()) if groups is not None else 0

    def __call__(self, batch: FairBatch) -> tuple[torch.Tensor, dict[str, Any]]:
        out = batch.adversary_logits
        labels = batch.labels if self.label_conditioned else None
        lsum, correct, valid = adversary_loss(out[0], batch.groups, labels, batch.row_weights)
        total = lsum * batch.scale
        logs: dict[str, Any] = {
            "adversary_loss": Ratio(lsum.detach(), valid),
            "adversary_accuracy": Ratio(correct, valid),
            "adversary_strength": float(self.module.strength),
        }
        if out.shape[0] > 1:  # confusion mode: the encoder is pushed towards uniform group predictions
            conf = confusion_loss(out[1], batch.groups, labels, batch.row_weights)
            total = total + self.module.strength * conf * batch.scale
            logs["adversary_confusion"] = float(conf.detach()) / max(float(valid), 1.0)
        if len(self.module.heads) > 1:
            orth = self.module.orthogonality()
            total = total + self.orthogonality_weight * orth / batch.accumulation_steps
            logs["adversary_orthogonality"] = float(orth.detach())
        return total, logs

    @classmethod
    def card_entry(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The card describes the adversary on the predictions as such and cites what its settings rely on."""
        entry = super().card_entry(config)
        n = config.get("num_adversaries")
        if config.get("adversary_label_conditioned"):
            entry["citations"].append("zhang2018")
        if isinstance(n, (int, float)) and not isinstance(n, bool) and n > 1:
            entry["citations"].append("han2021")
        if config.get("adversary_input") == "logits":
            entry["description"] = cls.card_text_logits
            entry["citations"].append("zhang2018")
        entry["citations"] = list(dict.fromkeys(entry["citations"]))
        return entry


def leakage_probe(representations: np.ndarray, groups: np.ndarray, seed: int = 0, folds: int = 5) -> dict[str, float]:
    """How much group information is left: cross-validated accuracy of a fresh logistic-regression probe on frozen
    representations, against the majority-class baseline (Elazar & Goldberg 2018)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    keep = groups >= 0
    x, y = np.asarray(representations)[keep], np.asarray(groups)[keep]
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError("the leakage probe needs at least two groups in the held-out data")
    n_splits = int(min(folds, counts.min()))
    if n_splits < 2:
        raise ValueError(f"the leakage probe needs at least 2 rows of every group, got counts {counts.tolist()}")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores = cross_val_score(probe, x, y, cv=cv)
    majority = float(counts.max() / counts.sum())
    acc = float(scores.mean())
    return {
        "leakage_probe_accuracy": acc,
        "leakage_probe_accuracy_std": float(scores.std()),
        "leakage_probe_majority_baseline": majority,
        "leakage_probe_gain": acc - majority,
        "leakage_probe_rows": int(len(y)),
    }


def transfer_probe(
    fit_x: np.ndarray, fit_groups: np.ndarray, held_x: np.ndarray, held_groups: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """The held-out protocol of the INLP/RLACE/LEACE papers: a logistic-regression probe trained on the fitting
    (training) rows, scored on held-out rows, against the held-out majority share. After an eraser fitted on the
    training rows this measures what it guarantees; `leakage_probe` (fitted on the held-out rows themselves) is the
    stricter number and also sees any shift between the two distributions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fk, hk = np.asarray(fit_groups) >= 0, np.asarray(held_groups) >= 0
    fx, fy = np.asarray(fit_x)[fk], np.asarray(fit_groups)[fk]
    hx, hy = np.asarray(held_x)[hk], np.asarray(held_groups)[hk]
    if len(np.unique(fy)) < 2 or not len(hy):
        raise ValueError("the transfer probe needs two groups in the fitting rows and held-out rows with a group")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    probe.fit(fx, fy)
    _, counts = np.unique(hy, return_counts=True)
    acc = float(probe.score(hx, hy))
    majority = float(counts.max() / counts.sum())
    return {
        "transfer_probe_accuracy": acc,
        "transfer_probe_majority_baseline": majority,
        "transfer_probe_gain": acc - majority,
    }
