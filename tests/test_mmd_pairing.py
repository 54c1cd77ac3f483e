"""MinDiff MMD and CLP pair losses equal model-remediation's published test values (mmd_loss_test.py, kernel and
counterfactual loss tests)."""

import math

import pytest
import torch

from fairtune.objectives.mmd import kernel_length_from_bandwidth, kernel_matrix, one_vs_rest_mmd, weighted_mmd
from fairtune.objectives.pairing import pair_loss

MEMBER = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
PRED = torch.tensor([0.3, 0.1, 0.86, 0.06, 0.75])
PRED_NEG = torch.tensor([0.12, 0.7, 0.2, 0.86, 0.32])
W = torch.tensor([1.0, 2.0, 2.5, 1.2, 0.9])


@pytest.mark.parametrize(
    "kernel,pred,weights,expected",
    [
        ("gaussian", PRED, None, 1.083264),
        ("gaussian", PRED_NEG, None, 1.464054),
        ("gaussian", PRED, W, 1.293555),
        ("gaussian", PRED_NEG, W, 1.481506),
        ("laplacian", PRED, None, 0.970659),
        ("laplacian", PRED_NEG, None, 1.119343),
        ("laplacian", PRED, W, 1.122741),
        ("laplacian", PRED_NEG, W, 1.159840),
    ],
)
def test_mmd_equals_model_remediation(kernel, pred, weights, expected):
    value = weighted_mmd(torch.sigmoid(pred[:, None]), MEMBER[:, None], weights, kernel=kernel)
    assert float(value) == pytest.approx(expected, abs=1e-5)


def test_mmd_zero_weights_multidim_and_gradients():
    member = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    pred = torch.tensor([0.3, 0.1, 0.86, 0.06, 0.75, 0.2, 0.5])[:, None]
    w = torch.tensor([1.0, 2.0, 2.5, 1.2, 0.9, 0.0, 0.0])
    assert float(weighted_mmd(torch.sigmoid(pred), member, w)) == pytest.approx(1.293555, abs=1e-5)
    assert float(weighted_mmd(torch.sigmoid(pred), member, w, kernel="laplacian")) == pytest.approx(1.122741, abs=1e-5)
    assert float(weighted_mmd(PRED_NEG, MEMBER, torch.zeros(5))) == 0.0
    multi = torch.tensor([[0.0, 0.5], [1.0, 0.0], [0.8, 0.0], [0.0, 0.8], [0.75, 0.8], [0.2, 0.4], [0.5, 0.1]])
    mw = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert float(weighted_mmd(torch.sigmoid(multi), member, mw)) == pytest.approx(0.262881, abs=1e-5)
    for kernel, expected in (
        ("gaussian", [-0.85786223, -1.8886726, 1.1220325, 0.5379708, -0.02113436]),
        ("laplacian", [-0.40014654, -0.7467264, 0.39164954, 0.10974818, 0.08942482]),
    ):
        v = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], requires_grad=True)
        weighted_mmd(torch.sigmoid(v * 3)[:, None], MEMBER, W, kernel=kernel).backward()
        assert v.grad.tolist() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="negative"):
        weighted_mmd(PRED_NEG, MEMBER, torch.tensor([1.0, 2.0, -2.5, 1.2, 0.9]))
    with pytest.raises(ValueError, match="kernel"):
        weighted_mmd(PRED, MEMBER, kernel="cosine")


@pytest.mark.parametrize("length", [0.05, 0.075, 0.1])
def test_kernels_like_model_remediation_kernel_tests(length):
    eye2, eye3 = torch.eye(2), torch.eye(3)
    g = lambda x: kernel_matrix(x, x, "gaussian", length)  # noqa: E731
    lap = lambda x: kernel_matrix(x, x, "laplacian", length)  # noqa: E731
    assert torch.allclose(g(torch.tensor([[1.0], [0.0]])), eye2, atol=1e-6)
    assert torch.allclose(g(torch.tensor([[0.1, 0.3], [0.5, 0.7], [0.9, 1.1]])), eye3, atol=1e-6)
    assert torch.allclose(lap(torch.tensor([[1.0, 3.0], [5.0, 7.0], [9.0, 11.0]])), eye3, atol=1e-6)
    assert torch.allclose(lap(torch.tensor([[0.2, 0.2], [0.2, 0.2]])), torch.ones(2, 2), atol=1e-6)
    near = torch.tensor([[1.0], [1.01]])
    assert not torch.allclose(g(near), eye2, atol=1e-6)
    # a shared offset leaves the kernel unchanged (it depends on x - y only)
    d = torch.tensor([[0.0], [0.01]])
    t1, t2 = torch.tensor([[1.0], [2.003]]), torch.tensor([[1.0], [5.503]])
    assert torch.allclose(kernel_matrix(t1, t1 + d, "gaussian", length), kernel_matrix(t2, t2 + d, "gaussian", length))


def test_laplacian_uses_the_euclidean_norm_and_bandwidth_mapping():
    x, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.3, 0.4]])
    assert float(kernel_matrix(x, y, "laplacian", 1.0)) == pytest.approx(math.exp(-0.5), abs=1e-6)  # L1 gives 0.7
    sigma = 0.1
    old = math.exp(-(0.5**2) / (2 * sigma**2))  # fairtune's old Gaussian with bandwidth sigma
    assert float(kernel_matrix(x, y, "gaussian", kernel_length_from_bandwidth(sigma))) == pytest.approx(old)


def test_one_vs_rest_mmd_any_number_of_groups():
    torch.manual_seed(0)
    p = torch.rand(30, 1)
    groups = torch.arange(30) % 3
    terms = [weighted_mmd(p, (groups == k).float()) for k in range(3)]
    assert float(one_vs_rest_mmd(p, groups)) == pytest.approx(float(torch.stack(terms).mean()))
    two = torch.arange(30) % 2
    assert float(one_vs_rest_mmd(p, two)) == pytest.approx(float(weighted_mmd(p, (two == 0).float())))
    single = one_vs_rest_mmd(p, torch.zeros(30, dtype=torch.long))
    assert float(single) == 0.0
    q = p.clone().requires_grad_(True)
    assert one_vs_rest_mmd(q, torch.zeros(30, dtype=torch.long)).requires_grad


ORIG = torch.tensor([[1.0, 9.0], [2.0, -5.0], [-2.0, 6.0]])
CF = torch.tensor([[4.0, 8.0], [12.0, 8.0], [1.0, 3.0]])
ORIG3 = torch.tensor([[1.0, 9.0, 2.0], [-5.0, -2.0, 6.0]])
CF3 = torch.tensor([[4.0, 8.0, 12.0], [8.0, 1.0, 3.0]])


@pytest.mark.parametrize(
    "kind,unweighted,scalar_23,per_pair_w",
    [("l2", 49.5, 113.85, 127.9666), ("l1", 5.5, 12.65, 13.57), ("cosine", -0.511, -1.175, 0.156)],
)
def test_pair_losses_equal_model_remediation(kind, unweighted, scalar_23, per_pair_w):
    assert float(pair_loss(ORIG, CF, kind)) == pytest.approx(unweighted, abs=1e-3)
    assert float(pair_loss(ORIG, CF, kind, sample_weight=2.3)) == pytest.approx(scalar_23, abs=1e-3)
    w = torch.tensor([1.2, 3.4])
    assert float(pair_loss(ORIG3, CF3, kind, sample_weight=w)) == pytest.approx(per_pair_w, abs=1e-2)
    assert float(pair_loss(ORIG3, CF3, kind, sample_weight=w[:, None])) == pytest.approx(per_pair_w, abs=1e-2)
    assert float(pair_loss(ORIG, CF, kind, sample_weight=0)) == 0.0
    match = -1.0 if kind == "cosine" else 0.0
    assert float(pair_loss(ORIG, ORIG, kind)) == pytest.approx(match, abs=1e-6)


def test_kl_pairing_masks_and_errors():
    a = torch.log_softmax(torch.tensor([[[2.0, 0.0], [0.0, 0.0]]]), -1)
    b = torch.log_softmax(torch.tensor([[[0.0, 2.0], [5.0, 0.0]]]), -1)
    only_first = pair_loss(a, b, "kl", mask=torch.tensor([[True, False]]))
    pa, pb = a[0, 0].exp(), b[0, 0].exp()
    expected = 0.5 * ((pa * (a[0, 0] - b[0, 0])).sum() + (pb * (b[0, 0] - a[0, 0])).sum())
    assert float(only_first) == pytest.approx(float(expected))
    assert float(pair_loss(a, b, "kl")) != pytest.approx(float(only_first))
    with pytest.raises(ValueError, match="same shape"):
        pair_loss(ORIG, CF[:1], "l2")
    with pytest.raises(ValueError, match="pair loss"):
        pair_loss(ORIG, CF, "hinge")
    with pytest.raises(ValueError, match="one weight per pair"):
        pair_loss(ORIG, CF, "l2", sample_weight=torch.ones(4))
    empty = torch.zeros(0, 2, requires_grad=True)
    assert float(pair_loss(empty, empty, "l2")) == 0.0
