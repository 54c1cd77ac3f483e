"""Fairness reports: NER/QA task metrics and gaps with example counts, the positive class, one-class models, plots
with bootstrap intervals and visible zero-height bars (issue 13)."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from fairtune.metrics.group import group_fairness_metrics
from fairtune.reporting import (
    confusion_from_rates,
    group_intervals,
    intervals_from_report,
    num_examples,
    plot_per_group,
    render_markdown,
    single_class_warning,
    write_fairness_report,
)

matplotlib.use("Agg")

NER_REPORT = {
    "split": "test",
    "precision": 0.61,
    "recall": 0.55,
    "f1": 0.58,
    "accuracy": None,
    "f1_gap": 0.2,
    "recall_gap": 0.1,
    "per_group": {
        "female": {"precision": 0.5, "recall": 0.5, "f1": 0.45, "count": 30},
        "male": {"precision": 0.7, "recall": 0.6, "f1": 0.65, "count": 40},
    },
}
QA_REPORT = {
    "split": "validation",
    "exact_match": 40.0,
    "f1": 55.0,
    "exact_match_gap": 20.0,
    "f1_gap": 10.0,
    "per_group": {
        "female": {"exact_match": 30.0, "f1": 50.0, "count": 10},
        "male": {"exact_match": 50.0, "f1": 60.0, "count": 10},
    },
    "predictions": {str(i): "x" for i in range(20)},
}


def _classification_report(y, p, g):
    rep = group_fairness_metrics(y, p, g, labels=[0, 1])
    return {"split": "test", **rep}


def test_ner_report_shows_f1_gaps_with_groups_and_counts():
    report = {k: v for k, v in NER_REPORT.items() if k != "accuracy"}
    md = render_markdown(report)
    assert "70 examples" in md and "? examples" not in md
    assert "| f1 | 0.5800 |" in md and "| precision | 0.6100 |" in md
    assert "| f1_gap | 0.2000 (male 0.6500, n=40 vs female 0.4500, n=30) |" in md
    assert "entity-level F1" in md


def test_qa_report_shows_em_f1_and_counts():
    md = render_markdown(QA_REPORT)
    assert "20 examples" in md
    assert "| exact_match | 40.0000 |" in md
    assert "| exact_match_gap | 20.0000 (male 50.0000, n=10 vs female 30.0000, n=10) |" in md
    assert num_examples({"split": "x"}) is None and "examples" not in render_markdown({"split": "x"})


def test_positive_class_named_from_the_saved_label_list(tmp_path):
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    g = ["f" if i % 2 else "m" for i in range(200)]
    (tmp_path / "fairtune_config.json").write_text(json.dumps({"label_list": ["nurse", "surgeon"]}))
    paths = write_fairness_report(tmp_path, _classification_report(y, p, g))
    md = (tmp_path / "fairness_report.md").read_text()
    assert "Positive class: `surgeon` (label id 1)" in md
    assert "Warning" not in md
    assert paths["plot"].endswith("fairness_per_group.png")


@pytest.mark.parametrize("constant, name", [(0, "`nurse`"), (1, "`surgeon`")])
def test_model_predicting_one_class_is_flagged(constant, name):
    y = np.array([0, 1] * 20)
    g = ["f", "m"] * 20
    report = _classification_report(y, np.full(40, constant), g)
    assert (
        single_class_warning(report, ["nurse", "surgeon"])
        == f"The model predicts one class ({name}) for every example."
    )
    assert "**Warning:** The model predicts one class" in render_markdown(report, label_list=["nurse", "surgeon"])


def test_multiclass_single_class_is_flagged():
    y = np.array([0, 1, 2] * 10)
    report = {"split": "t", **group_fairness_metrics(y, np.full(30, 2), ["a", "b"] * 15, labels=[0, 1, 2])}
    assert "class 2" in single_class_warning(report)


def test_confusion_counts_recovered_exactly_from_the_rates():
    rng = np.random.default_rng(1)
    for _ in range(30):
        n = int(rng.integers(3, 60))
        y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
        rep = group_fairness_metrics(y, p, ["a"] * n, labels=[0, 1])
        tp, fp, tn, fn = confusion_from_rates(rep["per_group"]["a"])
        assert (tp, fp, tn, fn) == (
            int(((y == 1) & (p == 1)).sum()),
            int(((y == 0) & (p == 1)).sum()),
            int(((y == 0) & (p == 0)).sum()),
            int(((y == 1) & (p == 0)).sum()),
        )
    assert confusion_from_rates({"count": 3, "accuracy": 0.5}) is None


def test_intervals_from_report_match_row_level_bootstrap():
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    g = np.where(rng.random(300) < 0.5, "f", "m")
    report = _classification_report(y, p, list(g))
    rebuilt = intervals_from_report(report, n_resamples=400)
    direct = group_intervals(y, p, g, n_resamples=400)
    for key in ("f/tpr", "m/fpr", "f/accuracy", "m/selection_rate"):
        group, stat = key.split("/")
        lo, hi = rebuilt[key]
        assert lo <= report["per_group"][group][stat] <= hi
        assert abs(lo - direct[key][0]) < 0.05 and abs(hi - direct[key][1]) < 0.05
    qa = intervals_from_report(QA_REPORT, n_resamples=200)
    assert qa["female/exact_match"][0] < 30.0 < qa["female/exact_match"][1]
    assert intervals_from_report({"per_group_intervals": {"a/tpr": [0.1, 0.2]}}) == {"a/tpr": (0.1, 0.2)}


def _captured_figure(monkeypatch):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    return figures


def test_plot_draws_intervals_and_labels_zero_height_bars(tmp_path, monkeypatch):
    figures = _captured_figure(monkeypatch)
    y = np.array([1] * 10 + [0] * 10 + [1] * 10 + [0] * 10)
    p = np.array([0] * 10 + [0] * 10 + [1] * 10 + [1] * 5 + [0] * 5)  # group f: TPR 0, selection rate 0
    g = ["f"] * 20 + ["m"] * 20
    report = _classification_report(y, p, g)
    assert report["per_group"]["f"]["tpr"] == 0.0
    assert plot_per_group(report, tmp_path / "p.png") == tmp_path / "p.png" and (tmp_path / "p.png").stat().st_size
    ax = figures[-1].axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("0.00") >= 2  # f's TPR and selection rate: zero-height bars, labelled
    spans = [
        seg for c in ax.containers if getattr(c, "errorbar", None) for seg in c.errorbar.lines[2][0].get_segments()
    ]
    assert any(abs(s[1][1] - s[0][1]) > 0.01 for s in spans)  # some interval has a visible length
    assert "95% bootstrap CI" in ax.get_title()
    assert any("n=20" in t.get_text() for t in ax.get_legend().get_texts())


def test_plot_ner_and_qa_scores(tmp_path, monkeypatch):
    figures = _captured_figure(monkeypatch)
    report = {k: v for k, v in NER_REPORT.items() if k != "accuracy"}
    assert plot_per_group(report, tmp_path / "ner.png") is not None
    assert [t.get_text() for t in figures[-1].axes[0].get_xticklabels()] == ["precision", "recall", "f1"]
    assert plot_per_group(QA_REPORT, tmp_path / "qa.png") is not None
    assert figures[-1].axes[0].get_ylim()[1] > 100


def test_suite_breakdown_plot_labels_zero_bars(tmp_path, monkeypatch):
    from fairtune.evaluation.base import SuiteResult
    from fairtune.evaluation.plots import plot_breakdown

    figures = _captured_figure(monkeypatch)
    result = SuiteResult(
        suite="group",
        metrics={},
        breakdown={"f": {"tpr": 0.0}, "m": {"tpr": 0.5}},
        plot_columns=["tpr"],
        intervals={"m/tpr": (0.4, 0.6)},
    )
    assert plot_breakdown(result, tmp_path / "b.png", baseline=result) is not None
    assert [t.get_text() for t in figures[-1].axes[0].texts].count("0.00") == 2
