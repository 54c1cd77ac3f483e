"""Group fairness metrics equal fairlearn's on binary data; multiclass one-vs-rest; missing groups left out."""

import numpy as np
import pytest

from fairtune.metrics.group import group_fairness_metrics

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_equal_fairlearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    p = np.where(rng.random(400) < 0.7, y, 1 - y)
    g = rng.choice(["a", "b", "c"], 400, p=[0.5, 0.3, 0.2])
    r = group_fairness_metrics(y, p, g)
    fl = fairlearn_metrics
    assert r["demographic_parity_difference"] == pytest.approx(
        fl.demographic_parity_difference(y, p, sensitive_features=g)
    )
    assert r["demographic_parity_ratio"] == pytest.approx(fl.demographic_parity_ratio(y, p, sensitive_features=g))
    assert r["equalized_odds_difference"] == pytest.approx(fl.equalized_odds_difference(y, p, sensitive_features=g))
    assert r["equalized_odds_ratio"] == pytest.approx(fl.equalized_odds_ratio(y, p, sensitive_features=g))
    frame = fl.MetricFrame(
        metrics={"tpr": fl.true_positive_rate, "fpr": fl.false_positive_rate, "sel": fl.selection_rate},
        y_true=y,
        y_pred=p,
        sensitive_features=g,
    )
    for name in ("a", "b", "c"):
        assert r["per_group"][name]["tpr"] == pytest.approx(frame.by_group.loc[name, "tpr"])
        assert r["per_group"][name]["fpr"] == pytest.approx(frame.by_group.loc[name, "fpr"])
        assert r["per_group"][name]["selection_rate"] == pytest.approx(frame.by_group.loc[name, "sel"])


def test_multiclass_one_vs_rest_largest_and_tpr_gap_rms():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    p = np.array([0, 1, 2, 0, 1, 2, 0, 0, 0, 1, 1, 2])
    g = np.array([0] * 6 + [1] * 6)
    r = group_fairness_metrics(y, p, g, labels=[0, 1, 2])
    # TPR per class: g0 = [1, 1, 1]; g1 = [0.5, 0.5, 0.5] -> gaps 0.5 each
    assert r["tpr_gap_rms"] == pytest.approx(0.5)
    # selection rates per class: g0 = [1/3, 1/3, 1/3]; g1 = [3/6, 2/6, 1/6] -> largest gap 1/6
    assert r["demographic_parity_difference"] == pytest.approx(1 / 6)
    assert r["equalized_odds_difference"] == pytest.approx(0.5)


def test_missing_groups_are_left_out_but_counted_in_accuracy():
    r = group_fairness_metrics([1, 0, 1, 1], [1, 0, 0, 1], ["a", "b", None, -1])
    assert r["accuracy"] == pytest.approx(0.75)
    assert set(r["per_group"]) == {"a", "b"}
    assert r["num_examples_without_group"] == 2


def test_bad_input():
    with pytest.raises(ValueError, match="same length"):
        group_fairness_metrics([1, 0], [1], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        group_fairness_metrics([], [], [])
