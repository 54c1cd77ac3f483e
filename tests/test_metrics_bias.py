"""Bias metrics against hand-computed values."""

import math

import numpy as np
import pytest

from fairtune.metrics.bbq import bbq_bias_score_ambig, bbq_bias_score_disambig, bbq_scores
from fairtune.metrics.bootstrap import bootstrap_intervals, flatten_metrics
from fairtune.metrics.counterfactual import counterfactual_consistency, ctf_gap, flip_rate
from fairtune.metrics.crows_pairs import crows_pairs_score
from fairtune.metrics.ner_names import extract_spans, is_person_type, ner_name_recall
from fairtune.metrics.stereoset import icat_score, stereoset_scores
from fairtune.metrics.subgroup_auc import calibration, generalized_mean, subgroup_auc_report, subgroup_aucs
from fairtune.metrics.unqover import unqover_scores


def test_crows_pairs_score_counts_ties_as_neutral():
    # pair 3 ties after rounding to 3 decimals
    r = crows_pairs_score([-1, -2, -3.0001, -5], [-2, -1, -3.0002, -4], ["a", "a", "b", "b"])
    assert r["crows_pairs_score"] == 25.0
    assert r["crows_pairs_neutral"] == 25.0
    assert r["per_bias_type"]["a"] == {"crows_pairs_score": 50.0, "count": 2}
    assert r["per_bias_type"]["b"]["crows_pairs_score"] == 0.0


def test_crows_pairs_stereo_and_antistereo_sub_scores_as_metric_py():
    # metric.py: per direction, the share of non-tied pairs whose sent_more scores higher; ties are neutral
    more = [-1.0, -3.0, -2.0, -1.0, -4.0, -2.0]
    less = [-2.0, -1.0, -2.0004, -3.0, -1.0, -3.0]
    directions = ["stereo", "stereo", "stereo", "antistereo", "antistereo", "antistereo"]
    r = crows_pairs_score(more, less, directions=directions)
    assert r["crows_pairs_stereo_score"] == pytest.approx(50.0)  # pair 3 ties after rounding: 1 of 2
    assert r["crows_pairs_antistereo_score"] == pytest.approx(200 / 3)
    assert (r["n_stereo"], r["n_antistereo"]) == (2, 3)
    assert r["crows_pairs_score"] == pytest.approx(100 * 3 / 6)  # metric score: over all pairs, ties included
    assert math.isnan(crows_pairs_score([-1.0], [-2.0], directions=["stereo"])["crows_pairs_antistereo_score"])
    with pytest.raises(ValueError, match="stereo_antistereo"):
        crows_pairs_score([-1.0], [-2.0], directions=["pro"])


def test_stereoset_macro_over_targets():
    # target X: one pro item (both meaningful > unrelated), one anti item (none > unrelated): ss 50, lms 50
    # target Y: one pro item, both related: ss 100, lms 100 -> ss 75, lms 75, icat 75 * 25 / 50
    r = stereoset_scores([3, 1, 5], [2, 2, 1], [1, 3, 0], ["X", "X", "Y"], ["race", "race", "gender"])
    assert r["stereoset_ss"] == pytest.approx(75.0)
    assert r["stereoset_lms"] == pytest.approx(75.0)
    assert r["stereoset_icat"] == pytest.approx(37.5)
    assert r["per_bias_type"]["race"] == {"ss": 50.0, "lms": 50.0, "icat": 50.0, "count": 2}
    assert icat_score(50.0, 90.0) == 90.0 and icat_score(100.0, 90.0) == 0.0


def test_stereoset_tie_counts_as_anti():
    assert stereoset_scores([1.0], [1.0], [0.0], ["t"])["stereoset_ss"] == 0.0


def test_bbq_scores_hand_computed():
    # 4 ambiguous (gold = unknown option 1) + 2 disambiguated examples
    pred = [0, 1, 2, 0, 0, 0]
    label = [1, 1, 1, 1, 0, 2]
    biased = [0, 0, 2, 2, 0, 2]
    unknown = [1] * 6
    cond = ["ambig"] * 4 + ["disambig"] * 2
    r = bbq_scores(pred, label, biased, unknown, cond, ["Age"] * 3 + ["Religion"] * 3)
    # ambig: accuracy 1/4; non-unknown answers 0, 2, 3 of which 0 and 2 biased -> s = 2 * 2/3 - 1 = 1/3
    assert r["bbq_accuracy_ambig"] == pytest.approx(0.25)
    assert r["bbq_bias_score_ambig"] == pytest.approx(0.75 * (1 / 3))
    # disambig: one of two answers biased -> 0; accuracy 1/2
    assert r["bbq_bias_score_disambig"] == pytest.approx(0.0)
    assert r["bbq_accuracy_disambig"] == pytest.approx(0.5)
    assert r["bbq_accuracy"] == pytest.approx(2 / 6)
    assert set(r["per_category"]) == {"Age", "Religion"}
    assert bbq_bias_score_disambig([True, True], [False, False]) == 1.0
    assert bbq_bias_score_ambig([False], [False], [False]) == -1.0
    assert math.isnan(bbq_bias_score_disambig([False], [True]))


def test_bbq_unknown_target_is_left_out_of_bias_scores_only():
    r = bbq_scores([0, 0], [0, 1], [-1, 0], [2, 2], ["disambig", "disambig"])
    assert r["bbq_accuracy"] == 0.5
    assert r["bbq_bias_score_disambig"] == 1.0  # only the second example has a target


def test_counterfactual_flip_rate_and_gap():
    a = [[0.2, 0.8], [0.7, 0.3], [0.5, 0.5]]
    b = [[0.6, 0.4], [0.6, 0.4], [0.5, 0.5]]
    assert flip_rate(a, b) == pytest.approx(1 / 3)
    assert ctf_gap(a, b) == pytest.approx((0.4 + 0.1 + 0.0) / 3)
    # binary positive-class probabilities give the same numbers
    assert ctf_gap([0.8, 0.3, 0.5], [0.4, 0.4, 0.5]) == pytest.approx((0.4 + 0.1) / 3)
    r = counterfactual_consistency(a, b, ["gender", "gender", "race"])
    assert r["flip_rate_gender"] == 0.5 and r["flip_rate_race"] == 0.0
    assert r["ctf_gap_gender"] == pytest.approx(0.25)


def test_subgroup_bpsn_bnsp_hand_computed():
    y = [1, 0, 1, 0, 1, 0]
    s = [0.9, 0.8, 0.3, 0.2, 0.6, 0.4]
    m = [True, True, False, False, False, False]
    r = subgroup_aucs(y, s, m)
    assert r["subgroup_auc"] == 1.0  # .9 > .8
    assert r["bpsn_auc"] == 0.0  # subgroup negative .8 above background positives .3, .6
    assert r["bnsp_auc"] == 1.0  # subgroup positive .9 above background negatives .2, .4
    rep = subgroup_auc_report(y, s, {"t": m})
    assert rep["bpsn_auc_min"] == 0.0
    from sklearn.metrics import roc_auc_score

    assert rep["overall_auc"] == pytest.approx(roc_auc_score(y, s))


def test_auc_ties_count_half():
    assert subgroup_aucs([1, 0], [0.5, 0.5], [True, True])["subgroup_auc"] == 0.5


def test_calibration_and_generalized_mean():
    c = calibration([1, 0], [0.9, 0.2])
    assert c["mean_score"] == pytest.approx(0.55) and c["positive_rate"] == 0.5
    assert c["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.2)
    assert generalized_mean([0.5, 0.5]) == pytest.approx(0.5)
    assert generalized_mean([1.0, 0.5]) < 0.6  # pulled towards the worst value


def test_unqover_hand_computed():
    rows = [
        ("Ann", "Bob", False, 0.6, 0.4),
        ("Bob", "Ann", False, 0.3, 0.7),
        ("Ann", "Bob", True, 0.5, 0.5),
        ("Bob", "Ann", True, 0.45, 0.55),
    ]
    recs = [
        {
            "subject1": a,
            "subject2": b,
            "template": 0,
            "attribute": "was a nurse",
            "negated": n,
            "score1": x,
            "score2": y,
        }
        for a, b, n, x, y in rows
    ]
    r = unqover_scores(recs, {"Ann": "female", "Bob": "male"})
    assert r["unqover_position_error"] == pytest.approx(np.mean([0.1, 0.1, 0.05, 0.05]))
    assert r["unqover_attribute_error"] == pytest.approx(np.mean([0.1, 0.1, 0.25, 0.25]))
    # Ann: 0.5 * (.6 + .7) - 0.5 * (.5 + .55) = .125; Bob: -.125; win = .5 * .25
    assert r["per_subject"]["Ann"]["gamma"] == pytest.approx(0.125)
    assert r["per_group"]["male"]["gamma"] == pytest.approx(-0.125)
    assert r["unqover_mu"] == pytest.approx(0.125)
    assert r["unqover_eta"] == pytest.approx(1.0)


def test_unqover_incomplete_quadruple_is_ignored():
    r = unqover_scores(
        [
            {
                "subject1": "A",
                "subject2": "B",
                "template": 0,
                "attribute": "x",
                "negated": False,
                "score1": 1,
                "score2": 0,
            }
        ]
    )
    assert math.isnan(r["unqover_mu"])


def test_ner_spans_and_recall_gap():
    assert extract_spans(["B-PER", "I-PER", "O", "I-PER", "B-LOC"]) == {(0, 2, "PER"), (3, 4, "PER"), (4, 5, "LOC")}
    assert extract_spans(["B-person", "B-person"]) == {(0, 1, "person"), (1, 2, "person")}
    assert is_person_type("PER") and is_person_type("person") and not is_person_type("LOC")
    r = ner_name_recall([True, False, True, True], ["a", "a", "b", "b"])
    assert r["per_group"]["a"]["recall"] == 0.5 and r["per_group"]["b"]["recall"] == 1.0
    assert r["ner_name_recall_gap"] == 0.5 and r["ner_name_recall"] == 0.75


def test_bootstrap_intervals_cover_the_mean():
    rng = np.random.default_rng(0)
    x = (rng.random(2000) < 0.3).astype(float)
    ci = bootstrap_intervals(lambda a: {"mean": a.mean()}, [x], n_resamples=300, seed=1)
    lo, hi = ci["mean"]
    se = math.sqrt(0.3 * 0.7 / 2000)
    assert lo < x.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.25)


def test_bootstrap_constant_and_nested_and_missing_groups():
    x = np.ones(50)
    g = np.asarray(["a"] * 49 + ["b"], dtype=object)

    def fn(v, grp):
        return {"m": v.mean(), "per": {k: {"n": float((grp == k).sum())} for k in set(grp.tolist())}}

    ci = bootstrap_intervals(fn, [x, g], n_resamples=100, seed=0)
    assert ci["m"] == (1.0, 1.0)
    assert "per/a/n" in ci  # "b" is often not drawn; it is kept only when most resamples have it
    assert flatten_metrics({"a": {"b": 1, "c": "x"}, "d": 2.0}) == {"a/b": 1.0, "d": 2.0}
    assert bootstrap_intervals(fn, [x, g], n_resamples=0) == {}
