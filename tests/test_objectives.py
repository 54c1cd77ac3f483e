"""Each objective against a value computed by hand, zero when groups look alike, gradient signs, edge cases."""

import math

import numpy as np
import pytest
import torch

from fairtune.objectives import group as G
from fairtune.objectives.adversarial import (
    Adversary,
    adversary_loss,
    cell_balance_weights,
    confusion_loss,
    ganin_schedule,
    grad_reverse,
    leakage_probe,
)
from fairtune.objectives.base import FairBatch
from fairtune.objectives.counterfactual import find_pairs, pair_divergence


def binary_batch(p1, groups, labels=None, losses=None, num_groups=2):
    p1 = torch.tensor(p1, dtype=torch.float32, requires_grad=True)
    probs = torch.stack([1 - p1, p1], dim=1)
    n = len(groups)
    return FairBatch(
        losses=torch.tensor(losses if losses is not None else [0.0] * n, requires_grad=True),
        groups=torch.tensor(groups),
        num_groups=num_groups,
        labels=torch.tensor(labels if labels is not None else [0] * n),
        probs=probs,
    ), p1


def test_demographic_parity_by_hand_and_gradient_sign():
    batch, p1 = binary_batch([0.8, 0.6, 0.3, 0.1], [0, 0, 1, 1])
    loss, logs = G.demographic_parity_gap(batch)
    assert loss.item() == pytest.approx(0.5)  # rates 0.7 vs 0.2
    assert logs["dp_gap"] == pytest.approx(0.5)
    loss.backward()
    # minimising the gap pushes the favoured group's scores down and the other group's up
    assert (p1.grad[:2] > 0).all() and (p1.grad[2:] < 0).all()


def test_demographic_parity_multiclass_per_class_rates():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]])
    batch = FairBatch(torch.zeros(4), torch.tensor([0, 0, 1, 1]), 2, torch.tensor([0, 1, 2, 0]), probs)
    loss, _ = G.demographic_parity_gap(batch)
    # group rates: g0 = [0.4, 0.15, 0.45], g1 = [0.2, 0.4, 0.4]; gaps 0.2, 0.25, 0.05
    assert loss.item() == pytest.approx((0.2 + 0.25 + 0.05) / 3)


def test_equalized_odds_by_hand():
    # group 0: positives score 0.9, 0.7 (TPR 0.8); negatives 0.2 (FPR 0.2)
    # group 1: positives score 0.5 (TPR 0.5); negatives 0.4, 0.0 (FPR 0.2)
    batch, p1 = binary_batch([0.9, 0.7, 0.2, 0.5, 0.4, 0.0], [0, 0, 0, 1, 1, 1], labels=[1, 1, 0, 1, 0, 0])
    loss, logs = G.equalized_odds_gap(batch)
    assert loss.item() == pytest.approx(0.3 + 0.0, abs=1e-6)
    assert logs["eo_tpr_gap"] == pytest.approx(0.3)
    loss.backward()
    assert p1.grad[0] > 0 and p1.grad[3] < 0  # shrink group 0's TPR, raise group 1's


def test_zero_when_groups_alike():
    batch, _ = binary_batch([0.8, 0.2, 0.8, 0.2], [0, 0, 1, 1], labels=[1, 0, 1, 0], losses=[1.0, 2.0, 1.0, 2.0])
    assert G.demographic_parity_gap(batch)[0].item() == pytest.approx(0.0)
    assert G.equalized_odds_gap(batch)[0].item() == pytest.approx(0.0)
    assert G.mindiff_mmd(batch)[0].item() == pytest.approx(0.0, abs=1e-6)
    assert G.loss_parity(batch)[0].item() == pytest.approx(0.0)


def test_single_group_batch_gives_connected_zero_not_nan():
    batch, p1 = binary_batch([0.8, 0.6, 0.3], [1, 1, -1], labels=[1, 0, 1], losses=[1.0, 2.0, 3.0])
    for fn in (G.demographic_parity_gap, G.equalized_odds_gap, G.mindiff_mmd, G.loss_parity):
        loss, _ = fn(batch)
        assert loss.item() == 0.0 and not math.isnan(loss.item())
        assert loss.requires_grad
    dro = G.GroupDRO(2)
    loss, _ = dro(batch)
    assert math.isfinite(loss.item())


def test_missing_group_rows_are_left_out():
    with_missing, _ = binary_batch([0.8, 0.6, 0.3, 0.1, 0.99], [0, 0, 1, 1, -1])
    assert G.demographic_parity_gap(with_missing)[0].item() == pytest.approx(0.5)


def test_mindiff_matches_numpy_mmd_and_label_restriction():
    batch, _ = binary_batch([0.9, 0.8, 0.1, 0.3], [0, 0, 1, 1], labels=[1, 0, 1, 0])
    a, b = np.array([[0.9], [0.8]]), np.array([[0.1], [0.3]])

    def k(x, y, s=0.5):
        return np.exp(-((x - y.T) ** 2) / (2 * s**2))

    expected = k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()
    loss, _ = G.mindiff_mmd(batch, "gaussian", 0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # restricted to label 0: one row per group (0.8 vs 0.3)
    loss0, _ = G.mindiff_mmd(batch, "gaussian", 0.5, label=0)
    assert loss0.item() == pytest.approx(2 - 2 * math.exp(-(0.5**2) / (2 * 0.25)), rel=1e-5)
    lap, _ = G.mindiff_mmd(batch, "laplacian", 0.5)
    lk = lambda x, y: np.exp(-np.abs(x - y.T) / 0.5)  # noqa: E731
    assert lap.item() == pytest.approx(lk(a, a).mean() + lk(b, b).mean() - 2 * lk(a, b).mean(), rel=1e-5)


def test_loss_parity_by_hand():
    batch, _ = binary_batch([0.5] * 4, [0, 0, 1, 1], losses=[1.0, 2.0, 3.0, 5.0])
    loss, _ = G.loss_parity(batch)
    assert loss.item() == pytest.approx(1.25)
    loss.backward()
    assert batch.losses.grad[0] < 0 and batch.losses.grad[3] > 0  # lower the worse group's loss


def test_group_dro_update_by_hand():
    batch, _ = binary_batch([0.5] * 4, [0, 0, 1, 1], losses=[1.0, 1.0, 3.0, 3.0])
    dro = G.GroupDRO(2, step_size=0.5)
    loss, logs = dro(batch)
    q = np.array([0.5 * math.exp(0.5), 0.5 * math.exp(1.5)])
    q /= q.sum()
    assert dro.q.numpy() == pytest.approx(q, rel=1e-5)
    assert loss.item() == pytest.approx(q[0] * 1 + q[1] * 3, rel=1e-5)
    assert logs["group_dro_q_1"] > logs["group_dro_q_0"]
    state = dro.state_dict()
    other = G.GroupDRO(2, 0.5)
    other.load_state_dict(state)
    assert torch.allclose(other.q, dro.q)
    # evaluation does not move q
    dro(batch, update=False)
    assert dro.q.numpy() == pytest.approx(q, rel=1e-5)


def test_gradient_reversal_sign_and_strength():
    x = torch.ones(3, requires_grad=True)
    (grad_reverse(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.5, -1.0, -1.5]))
    assert ganin_schedule(0.0) == 0.0 and ganin_schedule(1.0) == pytest.approx(1.0, abs=1e-4)


def test_adversary_trains_itself_and_reverses_encoder_gradient():
    torch.manual_seed(0)
    adv = Adversary(4, num_groups=2, hidden_size=8, num_layers=1)
    rep = torch.randn(6, 4, requires_grad=True)
    groups = torch.tensor([0, 1, 0, 1, -1, 0])
    adv.strength = 1.0
    lsum, correct, valid = adversary_loss(adv(rep)[0], groups)
    lsum.backward()
    grad_reversed = rep.grad.clone()
    rep.grad = None
    adv.strength = -1.0  # no reversal: ordinary gradient
    lsum2, _, _ = adversary_loss(adv(rep)[0], groups)
    lsum2.backward()
    assert torch.allclose(grad_reversed, -rep.grad)
    assert valid.item() == 5 and grad_reversed[4].abs().sum() == 0  # the row without a group takes no part


def test_label_conditioned_adversary_uses_the_true_label_head():
    adv = Adversary(4, num_groups=3, hidden_size=8, num_layers=0, num_labels=2)
    logits = adv(torch.randn(5, 4))[0]
    assert logits.shape == (1, 5, 2, 3)
    labels = torch.tensor([0, 1, 1, 0, 1])
    groups = torch.tensor([0, 1, 2, 0, 1])
    lsum, _, _ = adversary_loss(logits, groups, labels)
    picked = logits[0, torch.arange(5), labels]
    expected = torch.nn.functional.cross_entropy(picked, groups, reduction="sum")
    assert lsum.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="label-conditioned"):
        adversary_loss(logits, groups, None)


def test_orthogonality_between_adversaries():
    adv = Adversary(4, 2, hidden_size=3, num_layers=1, num_adversaries=2)
    w0, w1 = adv.heads[0][0].weight, adv.heads[1][0].weight
    assert adv.orthogonality().item() == pytest.approx((w0 @ w1.T).pow(2).sum().item(), rel=1e-5)
    assert Adversary(4, 2, num_adversaries=1).orthogonality().item() == 0.0


def test_clp_pairs_and_divergence():
    pair = torch.tensor([0, -1, 0, 3, 3])
    is_cf = torch.tensor([0, 0, 1, 0, 1])
    assert find_pairs(pair, is_cf).tolist() == [[0, 2], [3, 4]]
    a = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    b = torch.log(torch.tensor([[0.5, 0.5], [0.1, 0.9]]))
    d = pair_divergence(a, b)
    assert d[0].item() == pytest.approx(0.0, abs=1e-7)
    assert d[1].item() == pytest.approx(0.8 * math.log(9), rel=1e-5)


def test_leakage_probe_detects_signal_and_its_absence():
    rng = np.random.default_rng(0)
    groups = np.array([0, 1] * 100)
    leaky = rng.normal(size=(200, 5)) + groups[:, None] * 2.0
    clean = rng.normal(size=(200, 5))
    assert leakage_probe(leaky, groups)["leakage_probe_accuracy"] > 0.9
    res = leakage_probe(clean, groups)
    assert res["leakage_probe_majority_baseline"] == 0.5
    assert res["leakage_probe_accuracy"] < 0.65


def test_confusion_mode_trains_adversary_on_detached_rep_and_encoder_towards_uniform():
    torch.manual_seed(0)
    adv = Adversary(4, num_groups=2, hidden_size=8, num_layers=1, mode="confusion")
    rep = torch.randn(6, 4, requires_grad=True)
    groups = torch.tensor([0, 1, 0, 1, -1, 0])
    out = adv(rep)
    assert out.shape == (2, 1, 6, 1, 2)
    # the adversary's own loss reaches its weights but not the representation
    lsum, _, _ = adversary_loss(out[0], groups)
    lsum.backward(retain_graph=True)
    assert (rep.grad is None or rep.grad.abs().sum() == 0) and all(p.grad is not None for p in adv.parameters())
    adv.zero_grad()
    # the confusion term reaches the representation but not the adversary's weights
    conf = confusion_loss(out[1], groups)
    conf.backward()
    assert rep.grad is not None and rep.grad[4].abs().sum() == 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in adv.parameters())
    # by hand: CE against uniform = -mean log-softmax, over rows with a group
    logp = out[1][0, :, 0, :].log_softmax(-1)
    expected = -(logp.mean(-1) * (groups >= 0)).sum()
    assert conf.item() == pytest.approx(expected.item(), rel=1e-5)
    # uniform logits give exactly log(G) per row
    flat = torch.zeros(1, 3, 1, 2)
    assert confusion_loss(flat, torch.tensor([0, 1, 1])).item() == pytest.approx(3 * math.log(2))


def test_cell_balance_weights_make_every_cell_count_equally():
    groups = torch.tensor([0] * 9 + [1] * 1 + [0] * 2 + [1] * 8 + [-1])
    labels = torch.tensor([0] * 10 + [1] * 10 + [0])
    table = cell_balance_weights(groups, labels, num_groups=2)
    # 20 grouped rows, 4 cells: n / (cells * n_cell)
    expected = torch.tensor([[20 / (4 * 9), 20 / (4 * 1)], [20 / (4 * 2), 20 / (4 * 8)]])
    assert torch.allclose(table, expected)
    w = table[labels[:-1], groups[:-1]]
    for y in (0, 1):  # each cell's total weight is n / cells
        for g in (0, 1):
            cell = (labels[:-1] == y) & (groups[:-1] == g)
            assert w[cell].sum().item() == pytest.approx(5.0)
    # without labels: one slot, groups only; an empty cell gets weight 0
    assert torch.allclose(cell_balance_weights(torch.tensor([0, 0, 0, 1]), None, 3), torch.tensor([[4 / 6, 2.0, 0]]))


def test_adversary_loss_row_weights_scale_rows_not_counts():
    logits = torch.randn(1, 4, 1, 2)
    groups = torch.tensor([0, 1, 1, -1])
    w = torch.tensor([2.0, 0.5, 1.0, 7.0])
    lsum, correct, valid = adversary_loss(logits, groups, None, w)
    ce = torch.nn.functional.cross_entropy(logits[0, :3, 0], groups[:3], reduction="none")
    assert lsum.item() == pytest.approx((ce * w[:3]).sum().item(), rel=1e-5)
    assert valid.item() == 3 and correct.item() == adversary_loss(logits, groups)[1].item()
    conf = confusion_loss(logits, groups, None, w)
    per_row = -logits[0, :, 0].log_softmax(-1).mean(-1)
    assert conf.item() == pytest.approx((per_row[:3] * w[:3]).sum().item(), rel=1e-5)
