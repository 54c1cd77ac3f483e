"""Post-hoc per-group thresholds (Hardt et al. 2016) on synthetic scores with a known answer."""

import numpy as np
import pytest

from fairtune.thresholds import apply_thresholds, fit_thresholds


def _scores(seed=0, n=2000):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b"], n)
    y = rng.integers(0, 2, n)
    # group b's scores are shifted down: one shared threshold gives b a much lower TPR
    s = np.clip(0.5 * y + rng.normal(0.25, 0.15, n) - 0.2 * (g == "b"), 0, 1)
    return s, y, g


def _tpr(pred, y, g, k):
    m = (g == k) & (y == 1)
    return pred[m].mean()


def test_equal_opportunity_closes_the_tpr_gap():
    s, y, g = _scores()
    before = (s >= 0.5).astype(int)
    assert abs(_tpr(before, y, g, "a") - _tpr(before, y, g, "b")) > 0.3
    th = fit_thresholds(s, y, g, "equal_opportunity")
    after = apply_thresholds(s, g, th)
    assert abs(_tpr(after, y, g, "a") - _tpr(after, y, g, "b")) < 0.02
    assert th["thresholds"]["b"] < th["thresholds"]["a"]
    assert (after == y).mean() > 0.85


def test_equalized_odds_closes_both_gaps():
    s, y, g = _scores(1)
    th = fit_thresholds(s, y, g, "equalized_odds")
    after = apply_thresholds(s, g, th)
    fpr = [after[(g == k) & (y == 0)].mean() for k in ("a", "b")]
    assert abs(_tpr(after, y, g, "a") - _tpr(after, y, g, "b")) < 0.05
    assert abs(fpr[0] - fpr[1]) < 0.05


def test_unknown_group_uses_the_default_and_bad_inputs_raise():
    th = {"thresholds": {"a": 0.9}, "default_threshold": 0.5}
    assert apply_thresholds([0.6, 0.6, 0.6], ["a", "z", None], th).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="criterion"):
        fit_thresholds([0.1, 0.9], [0, 1], ["a", "b"], "demographic_parity")
    with pytest.raises(ValueError, match="two groups"):
        fit_thresholds([0.1, 0.9], [0, 1], ["a", "a"])
