"""The monitor's numbers: window metrics from cell counts, multinomial bootstrap, drift tests, bias coefficient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from fairtune.metrics.bootstrap import bootstrap_intervals
from fairtune.metrics.group import HEADLINE_METRICS as HEADLINE  # noqa: E402
from fairtune.metrics.group import group_fairness_metrics
from fairtune.metrics.residuals import bias_coefficient
from fairtune.monitor import window_metrics as wm
from fairtune.monitor.drift import chi_square_p, ks_binned, psi


def _rows(n=3000, seed=1, groups=("female", "male", "none")):
    rng = np.random.default_rng(seed)
    g = rng.choice(list(groups) + [None], n, p=[0.9 / len(groups)] * len(groups) + [0.1])
    y = rng.integers(0, 2, n)
    p = (rng.random(n) < np.where(g == "female", 0.6, 0.4) * (0.6 + 0.6 * y)).astype(int)
    s = np.clip(0.2 + 0.6 * y + rng.normal(0, 0.2, n) - 0.1 * (g == "female"), 0, 1)
    return pd.DataFrame({"grp": g, "y": y, "p": p, "s": s})


def _cells(df):
    df = df.assign(r=df["y"] - df["s"])
    return (
        df.groupby(["grp", "y", "p"], dropna=False)
        .agg(
            n=("s", "size"),
            s_n=("s", "count"),
            s_sum=("s", "sum"),
            r_n=("r", "count"),
            r_sum=("r", "sum"),
            r_sq=("r", lambda v: float((v**2).sum())),
        )
        .reset_index()
    )


@pytest.mark.parametrize("groups", [("female", "male"), ("a", "b", "c"), ("female", "male", "none")])
def test_window_metrics_equal_group_fairness_metrics_on_the_rows(groups):
    df = _rows(groups=groups)
    ref = group_fairness_metrics(df["y"], df["p"], df["grp"].tolist(), labels=[0, 1])
    got = wm.window_metrics(_cells(df), n_bootstrap=0)
    for key in HEADLINE:
        assert got["metrics"][key] == pytest.approx(ref[key], abs=1e-12), key
    for g, stats in ref["per_group"].items():
        for rate in ("selection_rate", "tpr", "fpr", "accuracy"):
            assert got["per_group"][g][rate] == pytest.approx(stats[rate], abs=1e-12)
    assert got["rows"] == len(df) and got["rows_without_group"] == int(df["grp"].isna().sum())


def test_vectorised_formulas_equal_the_reference_on_the_point():
    """The bootstrap's vectorised formulas agree with fairtune.metrics.group (else the slow path is used)."""
    layout = wm.CellLayout.from_cells(_cells(_rows()))
    groups = set(layout.groups)
    point = wm.point_metrics(layout, groups, groups)
    cols = np.arange(len(layout.groups))
    vec = wm.vector_metrics(layout, layout.counts[None, :], cols, cols)
    for key, value in point.items():
        assert float(vec[key][0]) == pytest.approx(value, abs=1e-12), key


def test_multinomial_intervals_match_the_row_bootstrap():
    df = _rows(n=2000, groups=("female", "male"))
    got = wm.window_metrics(_cells(df), n_bootstrap=2000, seed=0)["intervals"]

    def fn(yt, yp, g):
        r = group_fairness_metrics(yt, yp, list(g), labels=[0, 1])
        return {k: r[k] for k in ("demographic_parity_difference", "equalized_odds_difference", "accuracy")}

    rows = bootstrap_intervals(
        fn, [df["y"].to_numpy(), df["p"].to_numpy(), df["grp"].to_numpy(dtype=object)], n_resamples=300, seed=0
    )
    for key, (lo, hi) in rows.items():
        assert got[key][0] == pytest.approx(lo, abs=0.012), key
        assert got[key][1] == pytest.approx(hi, abs=0.012), key


def test_intervals_do_not_depend_on_the_order_of_the_cells():
    """SQL GROUP BY returns cells in any order; the seeded intervals must be the same for every order (CI flake)."""
    cells = _cells(_rows())
    ref = wm.window_metrics(cells, n_bootstrap=200, seed=3)
    for shuffle_seed in range(3):
        shuffled = cells.sample(frac=1.0, random_state=shuffle_seed).reset_index(drop=True)
        got = wm.window_metrics(shuffled, n_bootstrap=200, seed=3)
        assert got["intervals"] == ref["intervals"]
        assert got["metrics"] == pytest.approx(ref["metrics"], abs=1e-12)


def test_changed_conventions_fall_back_to_group_fairness_metrics(monkeypatch):
    """If the vectorised DP disagrees with fairtune.metrics.group, its interval comes from the slow path."""
    cells = _cells(_rows(n=800, groups=("female", "male")))
    expected = wm.window_metrics(cells, n_bootstrap=50)["intervals"]
    original = wm.vector_metrics

    def wrong(*args, **kwargs):
        out = original(*args, **kwargs)
        out["demographic_parity_difference"] = out["demographic_parity_difference"] + 0.5
        return out

    monkeypatch.setattr(wm, "vector_metrics", wrong)
    got = wm.window_metrics(cells, n_bootstrap=50)["intervals"]
    assert got["demographic_parity_difference"] == pytest.approx(expected["demographic_parity_difference"])


def test_min_group_rows_matches_min_group_size():
    df = pd.concat(
        [
            _rows(n=1500, groups=("female", "male")),
            pd.DataFrame({"grp": ["tiny"] * 30, "y": [0] * 30, "p": [1] * 30, "s": [0.9] * 30}),
        ]
    )
    with pytest.warns(UserWarning, match="tiny"):
        ref = group_fairness_metrics(df["y"], df["p"], df["grp"].tolist(), labels=[0, 1], min_group_size=100)
    got = wm.window_metrics(_cells(df), n_bootstrap=0, min_group_rows=100)
    for key in HEADLINE:
        assert got["metrics"][key] == pytest.approx(ref[key], abs=1e-12), key
    assert got["small_groups"] == ["tiny"]


def test_gap_groups_restrict_the_gaps():
    df = _rows(groups=("female", "male", "none"))
    pair = df[df["grp"].isin(["female", "male"])]
    ref = group_fairness_metrics(pair["y"], pair["p"], pair["grp"].tolist(), labels=[0, 1])
    got = wm.window_metrics(_cells(df), n_bootstrap=0, gap_groups=("female", "male"))
    assert got["metrics"]["demographic_parity_difference"] == pytest.approx(ref["demographic_parity_difference"])
    assert got["metrics"]["equalized_odds_difference"] == pytest.approx(ref["equalized_odds_difference"])
    assert "none" in got["per_group"] and not got["per_group"]["none"]["in_gaps"]


def test_unlabelled_rows_count_only_in_label_free_metrics():
    df = _rows(groups=("female", "male"))
    unlabelled = df.sample(frac=0.4, random_state=0).index
    cells = _cells(df.assign(y=df["y"].astype(float).where(~df.index.isin(unlabelled))))
    got = wm.window_metrics(cells, n_bootstrap=0)["metrics"]
    everything = group_fairness_metrics(df["y"], df["p"], df["grp"].tolist(), labels=[0, 1])
    lab = df.drop(unlabelled)
    labelled = group_fairness_metrics(lab["y"], lab["p"], lab["grp"].tolist(), labels=[0, 1])
    assert got["demographic_parity_difference"] == pytest.approx(everything["demographic_parity_difference"])
    assert got["equalized_odds_difference"] == pytest.approx(labelled["equalized_odds_difference"])
    assert got["accuracy"] == pytest.approx(labelled["accuracy"])


def test_psi_by_hand():
    e, a = [50, 30, 20], [30, 30, 40]
    ep, ap = np.array(e) / 100, np.array(a) / 100
    assert psi(e, a) == pytest.approx(float(np.sum((ap - ep) * np.log(ap / ep))))
    assert psi(e, e) == 0.0


def test_binned_ks_equals_scipy_on_grid_scores():
    rng = np.random.default_rng(0)
    grid = (np.arange(100) + 0.5) / 100
    x = rng.choice(grid, 3000, p=np.linspace(1, 2, 100) / np.linspace(1, 2, 100).sum())
    y = rng.choice(grid, 2000)
    hist = lambda v: np.bincount(np.floor(v * 100).astype(int), minlength=100)  # noqa: E731
    d, p = ks_binned(hist(x), hist(y))
    ref = ks_2samp(x, y, method="asymp")
    assert d == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, rel=1e-9)


def test_chi_square_p_equals_scipy():
    e, a = [500, 300, 200], [450, 350, 200]
    assert chi_square_p(e, a) == pytest.approx(chi2_contingency(np.array([e, a])).pvalue)


def test_bias_coefficient_per_group_mean_residual_and_gap():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    g = np.where(np.arange(4000) % 2, "a", "b")
    s = np.clip(np.where(g == "a", y - 0.2 * (2 * y - 1), y - 0.05 * (2 * y - 1)), 0, 1)
    out = bias_coefficient(y, s, g)
    for name in ("a", "b"):
        m = g == name
        assert out["per_group"][name]["mean_residual"] == pytest.approx(float(np.mean(y[m] - s[m])))
        assert out["per_group"][name]["residual_std"] == pytest.approx(float(np.std(y[m] - s[m], ddof=1)))
    gap = out["per_group"]["a"]["mean_residual"] - out["per_group"]["b"]["mean_residual"]
    assert out["bias_coefficient_gap"] == pytest.approx(abs(gap))
    lo, hi = out["bias_coefficient_gap_ci"]
    assert lo <= out["bias_coefficient_gap"] <= hi
    same = bias_coefficient(y, np.where(y == 1, 0.8, 0.2), g)
    assert same["bias_coefficient_gap"] == pytest.approx(0.0, abs=0.02)


def test_window_bias_coefficient_equals_the_row_function():
    df = _rows(groups=("female", "male"))
    got = wm.window_metrics(_cells(df), n_bootstrap=0)
    ref = bias_coefficient(df["y"], df["s"], df["grp"].tolist())
    assert got["metrics"]["bias_coefficient_gap"] == pytest.approx(ref["bias_coefficient_gap"])
    assert got["per_group"]["female"]["mean_residual"] == pytest.approx(ref["per_group"]["female"]["mean_residual"])


def _suite(options):
    from fairtune.evaluation.base import EvalSettings, options_from_dict
    from fairtune.evaluation.suites import get_suite

    module = get_suite("group")
    loaded = None
    if "data" in options:
        from test_eval_models import loaded as load

        loaded = load("classifier")
    settings = EvalSettings(n_bootstrap=40, batch_size=16, progress=False)
    return module.run(loaded, options_from_dict(module.Options, options, "group"), settings)


def test_group_suite_reports_the_bias_coefficient_from_scores(tmp_path):
    df = _rows(n=600, groups=("female", "male"))
    path = tmp_path / "preds.jsonl"
    df.rename(columns={"grp": "group", "y": "label", "p": "prediction", "s": "score"}).dropna().to_json(
        path, orient="records", lines=True
    )
    r = _suite({"predictions": str(path)})
    clean = df.dropna()
    ref = bias_coefficient(clean["y"], clean["s"], clean["grp"].tolist())
    assert r.metrics["bias_coefficient_gap"] == pytest.approx(ref["bias_coefficient_gap"])
    assert r.breakdown["female"]["mean_residual"] == pytest.approx(ref["per_group"]["female"]["mean_residual"])
    lo, hi = r.intervals["bias_coefficient_gap"]
    assert lo <= hi and "female/mean_residual" in r.intervals
    assert any("bias_coefficient_gap" in n for n in r.notes)

    no_scores = tmp_path / "plain.jsonl"
    df.drop(columns="s").rename(columns={"grp": "group", "y": "label", "p": "prediction"}).dropna().to_json(
        no_scores, orient="records", lines=True
    )
    assert "bias_coefficient_gap" not in _suite({"predictions": str(no_scores)}).metrics


def test_group_suite_bias_coefficient_with_a_model(tmp_path):
    rows = [
        {
            "text": f"{'she' if i % 2 else 'he'} thought it was {'great' if i % 3 else 'awful'}",
            "label": i % 2,
            "group": "female" if i % 2 else "male",
        }
        for i in range(60)
    ]
    path = tmp_path / "data.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    r = _suite({"data": str(path)})
    assert set(r.breakdown) == {"female", "male"}
    means = [r.breakdown[g]["mean_residual"] for g in ("female", "male")]
    assert r.metrics["bias_coefficient_gap"] == pytest.approx(max(means) - min(means))
