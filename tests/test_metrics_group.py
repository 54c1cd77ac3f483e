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


# fairlearn's test data (test/unit/metrics/data_for_test.py): y_t, y_p, s_w and g_1 = runs of two "aa"/"ba".
# fmt: off
FL_Y_T = np.asarray([
    1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0,
    0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0,
    0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1,
])
FL_Y_P = np.asarray([
    0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0,
    0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
])
FL_S_W = np.asarray([
    1, 2, 3, 1, 2, 1, 2, 3, 1, 1, 1, 2, 3, 3, 1, 2, 1, 1, 1, 2, 3, 2, 2, 1,
    2, 1, 3, 1, 3, 1, 4, 1, 2, 1, 3, 2, 3, 3, 4, 1, 4, 1, 3, 1, 1, 1, 2, 3,
    3, 1, 2, 1, 1, 1, 2, 3, 1, 1, 2, 3, 2, 1, 2, 2, 3, 2, 3, 2, 3, 4, 1,
])
# fmt: on
FL_G_1 = np.asarray([["aa", "ba"][(i // 2) % 2] for i in range(len(FL_Y_T))])


@pytest.mark.parametrize("weighted", [False, True])
def test_fairlearn_published_data_weighted_and_unweighted(weighted):
    fl = fairlearn_metrics
    sw = FL_S_W if weighted else None
    r = group_fairness_metrics(FL_Y_T, FL_Y_P, FL_G_1, sample_weight=sw)
    kw = {"sensitive_features": FL_G_1, "sample_weight": sw}
    for name in (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
        "equal_opportunity_difference",
        "equal_opportunity_ratio",
    ):
        assert r[name] == pytest.approx(getattr(fl, name)(FL_Y_T, FL_Y_P, **kw), abs=1e-12), name
    assert r["accuracy"] == pytest.approx(np.average(FL_Y_T == FL_Y_P, weights=sw))
    if weighted:  # the weights change the answer, so the test above really checks them
        assert r["equalized_odds_difference"] != pytest.approx(
            group_fairness_metrics(FL_Y_T, FL_Y_P, FL_G_1)["equalized_odds_difference"]
        )


def test_group_without_positives_counts_tpr_zero_like_fairlearn():
    y = [1, 1, 0, 0, 0, 0]
    p = [1, 0, 0, 1, 0, 0]
    g = ["a", "a", "a", "b", "b", "b"]  # group b has no positives
    r = group_fairness_metrics(y, p, g)
    fl = fairlearn_metrics.equalized_odds_difference(y, p, sensitive_features=g)
    assert r["equalized_odds_difference"] == pytest.approx(fl) == pytest.approx(0.5)
    assert r["per_group"]["b"]["tpr"] == 0.0
    skipped = group_fairness_metrics(y, p, g, undefined_rate="skip")
    assert skipped["equalized_odds_difference"] == pytest.approx(1 / 3)  # FPR gap only: 1/3 - 0
    with pytest.raises(ValueError, match="undefined_rate"):
        group_fairness_metrics(y, p, g, undefined_rate="nan")


def _fairlib_gap(y_pred, y_true, groups):
    """fairlib's `gap_eval_scores(...)["TPR_GAP"]` written out from its definition: confusion matrices with 1e-5
    added to every TP/FN cell, TPR per class and group, sum over groups of |TPR_g - TPR_overall|, RMS over classes."""
    from sklearn.metrics import confusion_matrix

    labels = list(range(len(set(y_true))))

    def tpr(yt, yp):
        cm = confusion_matrix(yt, yp, labels=labels)
        tp = np.diag(cm) + 1e-5
        fn = cm.sum(1) - np.diag(cm) + 1e-5
        return tp / (tp + fn)

    overall = tpr(y_true, y_pred)
    per = np.stack([tpr(y_true[groups == k], y_pred[groups == k]) for k in range(len(set(groups)))], axis=1)
    return float(np.sqrt(np.mean(np.sum(np.abs(per - overall[:, None]), axis=1) ** 2)))


@pytest.mark.parametrize("n_groups,n_classes", [(2, 2), (3, 2), (4, 3)])
def test_tpr_gap_rms_equals_fairlib_gap(n_groups, n_classes):
    rng = np.random.default_rng(n_groups * 10 + n_classes)
    y = rng.integers(0, n_classes, 3000)
    g = rng.integers(0, n_groups, 3000)
    p = np.where(rng.random(3000) < 0.6 + 0.1 * g, y, rng.integers(0, n_classes, 3000))
    r = group_fairness_metrics(y, p, g, labels=list(range(n_classes)))
    assert r["tpr_gap_rms"] == pytest.approx(_fairlib_gap(p, y, g), abs=5e-5)
    if n_groups == 2:  # two groups: the sum of distances to the overall TPR is the max-min gap
        assert r["tpr_gap_rms_max"] == pytest.approx(r["tpr_gap_rms"])
    else:
        assert r["tpr_gap_rms"] > r["tpr_gap_rms_max"]


def test_binary_tpr_gap_rms_runs_over_both_classes():
    # group a: TPR 1.0, TNR 1.0; group b: TPR 0.5, TNR 0.75
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 0])
    p = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 1])
    g = np.array(["a"] * 4 + ["b"] * 6)
    r = group_fairness_metrics(y, p, g)
    assert r["tpr_gap_rms"] == pytest.approx(np.sqrt((0.5**2 + 0.25**2) / 2))
    assert r["equal_opportunity_difference"] == pytest.approx(0.5)
    assert r["equal_opportunity_ratio"] == pytest.approx(0.5)


def test_small_groups_are_reported_and_left_out_with_a_warning():
    y = np.array([1, 0] * 20 + [1, 1, 0])
    p = np.array([1, 0] * 20 + [0, 0, 1])
    g = np.array(["a", "a", "b", "b"] * 10 + ["tiny"] * 3)
    with pytest.warns(UserWarning, match="tiny"):
        r = group_fairness_metrics(y, p, g, min_group_size=5)
    assert r["excluded_groups"] == {"tiny": 3}
    assert r["per_group"]["tiny"]["excluded"] is True and r["per_group"]["tiny"]["count"] == 3
    assert r["equalized_odds_difference"] == 0.0 and r["num_groups"] == 2
    assert group_fairness_metrics(y, p, g)["equalized_odds_difference"] == 1.0
    with pytest.raises(ValueError, match="sample_weight"):
        group_fairness_metrics(y, p, g, sample_weight=[1.0])
