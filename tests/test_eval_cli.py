"""`fairtune evaluate` and `fairtune thresholds` end to end: results.json, report.md, PNGs, baseline, thresholds."""

import json

import numpy as np
import pytest
from test_eval_models import DATA, tiny_model

from fairtune.cli import main


def _data(tmp_path, n=80):
    import pandas as pd

    rng = np.random.default_rng(2)
    rows = [
        {
            "text": f"{'she' if i % 2 else 'he'} liked it {i}",
            "label": int(rng.integers(0, 2)),
            "group": "female" if i % 2 else "male",
        }
        for i in range(n)
    ]
    path = tmp_path / "data.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_flag_form_group_writes_results_report_and_plots(tmp_path):
    out = tmp_path / "eval"
    rc = main(
        [
            "evaluate",
            "--suite",
            "group",
            "--model",
            tiny_model("classifier"),
            "--data",
            str(_data(tmp_path)),
            "--output",
            str(out),
            "--n-bootstrap",
            "20",
            "--no-progress",
        ]
    )
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    for key in ("demographic_parity_difference", "equalized_odds_difference", "tpr_gap_rms"):
        assert isinstance(results[key], float)
    assert results["intervals"]["equalized_odds_difference"][0] <= results["intervals"]["equalized_odds_difference"][1]
    report = (out / "report.md").read_text()
    assert "## group" in report and "| `demographic_parity_difference` |" in report and "95% CI" in report
    assert (out / "group.png").stat().st_size > 1000


def test_recipe_with_baseline_results_dir(tmp_path):
    data = _data(tmp_path)
    base = tmp_path / "before"
    assert (
        main(
            [
                "evaluate",
                "--suite",
                "group",
                "--model",
                tiny_model("classifier"),
                "--data",
                str(data),
                "--output",
                str(base),
                "--n-bootstrap",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model: {tiny_model('classifier')}\noutput_dir: {tmp_path / 'after'}\nsuites: [group]\nn_bootstrap: 10\nprogress: false\n"
        f"baseline: {base}\ngroup:\n  data: {data}\n"
    )
    assert main(["evaluate", str(recipe)]) == 0
    results = json.loads((tmp_path / "after" / "results.json").read_text())
    assert results["change"]["accuracy"] == pytest.approx(0.0)
    report = (tmp_path / "after" / "report.md").read_text()
    assert "| baseline | change |" in report and "(was " in report
    assert (tmp_path / "after" / "summary.png").is_file()


def test_recipe_unknown_key_is_an_error(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("suites: [group]\noutput_dir: x\nbogus: 1\n")
    assert main(["evaluate", str(recipe)]) == 2  # one line and exit code 2, no traceback (issue 13)
    assert "unknown key" in capsys.readouterr().err


def test_no_suite_is_a_usage_error(tmp_path, capsys):
    assert main(["evaluate", "--output", str(tmp_path)]) == 2
    assert "no suite selected" in capsys.readouterr().err


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")
def test_lm_suites_with_model_baseline(tmp_path):
    out = tmp_path / "lm"
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(
        f"model: {tiny_model('masked_lm')}\nbaseline: {tiny_model('masked_lm')}\noutput_dir: {out}\nsuites: [crows_pairs, stereoset]\n"
        "n_bootstrap: 10\nprogress: false\ncrows_pairs:\n  max_examples: 6\nstereoset:\n  max_examples: 6\n"
    )
    assert main(["evaluate", str(recipe)]) == 0
    results = json.loads((out / "results.json").read_text())
    for key in ("crows_pairs_score", "stereoset_ss", "stereoset_lms", "stereoset_icat"):
        assert key in results and results["change"][key] == pytest.approx(0.0)
    assert {"crows_pairs.png", "stereoset.png", "summary.png"} <= set(results["plots"])


def test_thresholds_fit_store_and_apply(tmp_path):
    import shutil

    from fairtune.posthoc.thresholds import load_thresholds, predict_with_thresholds

    model = tmp_path / "model"
    shutil.copytree(tiny_model("classifier"), model)
    data = _data(tmp_path)
    assert (
        main(
            [
                "thresholds",
                "--model",
                str(model),
                "--data",
                str(data),
                "--test-data",
                str(data),
                "--criterion",
                "equalized_odds",
            ]
        )
        == 0
    )
    th = load_thresholds(model)
    assert th["criterion"] == "equalized_odds" and set(th["thresholds"]) == {"female", "male"}
    assert "pipeline ignores" in th["note"]
    assert "test" in th["effect"]
    preds = predict_with_thresholds(str(model), ["she liked it", "he liked it"], ["female", "male"])
    assert set(preds.tolist()) <= {0, 1}
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--suite",
                "group",
                "--model",
                str(model),
                "--data",
                str(data),
                "--output",
                str(out),
                "--n-bootstrap",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert "without_thresholds" in results["details"]["group"]["details"]
    assert "Effect of the post-hoc thresholds" in (out / "report.md").read_text()
