"""`bench/bench_real.py --quick` end to end on RedditBias (slow): every row of the table, numbers recomputed from the
cached predictions, resuming without training, the post-hoc rows, the report-only mode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SHARED

pytestmark = pytest.mark.slow

REAL = SHARED / "data" / "redditbias"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_real", REPO / "bench" / "bench_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not REAL.is_dir(), reason="RedditBias is not in ../shared/data/redditbias (not shipped)")
def test_bench_real_quick_end_to_end(tmp_path, monkeypatch):
    bench = _bench()
    out = tmp_path / "bench"
    argv = ["--quick", "--methods", "plain,eo,cda_two_sided_clp,dixon", "--n-train", "192", "--n-val", "160",
            "--n-test", "200", "--max-length", "32", "--output", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    result = json.loads((out / "results.json").read_text())
    methods = [r["method"] for r in result["rows"]]
    assert methods == ["plain", "plain+thresholds", "plain+thresholds (randomized)", "plain+LEACE", "eo",
                       "cda_two_sided_clp", "dixon"]  # fmt: skip
    assert result["complete"] and result["seeds"] == [42]
    assert result["data"]["sizes"]["test"] == 200 and result["data"]["cleaning"]["dropped_total"]["stray_label"] == 47

    # Every in-training row is recomputed from its run's cached test predictions and the test split.
    test = [json.loads(line) for line in open(out / "data" / "test.jsonl")]
    y = np.array([r["label"] for r in test])
    for row in result["rows"]:
        if "+" in row["method"]:
            continue
        assert row["n"] == 1
        run_dir = next(
            Path(r["output_dir"]) for r in json.loads((out / row["method"] / "sweep.json").read_text())["runs"]
        )
        probs = np.load(run_dir / "bench_predictions.npz")["test_probs"]
        assert len(probs) == 200
        assert row["test_mean"]["accuracy"] == pytest.approx(float((probs.argmax(1) == y).mean()))
        for key in ("macro_f1", "equalized_odds_difference", "tpr_gap_rms", "subgroup_auc_min", "bpsn_auc_min",
                    "bnsp_auc_min", "leakage_probe_accuracy", "fpr_female", "fnr_muslim"):  # fmt: skip
            assert key in row["test_mean"], (row["method"], key)
    dixon = json.loads((out / "data" / "data.json").read_text())["dixon_added"]
    assert dixon["female"] > 0  # women are the group furthest above the overall biased rate
    thr = next(r for r in result["rows"] if r["method"] == "plain+thresholds (randomized)")
    plain = result["rows"][0]
    assert thr["test_mean"]["subgroup_auc_min"] == pytest.approx(plain["test_mean"]["subgroup_auc_min"])  # same scores
    leace = next(r for r in result["rows"] if r["method"] == "plain+LEACE")
    if leace["n"]:  # the erased head input carries less group information than the plain representation
        assert leace["test_mean"]["leakage_probe_accuracy"] < plain["test_mean"]["leakage_probe_accuracy"]
    md = (out / "results.md").read_text()
    assert "| plain+thresholds |" in md and "FPR / FNR per group" in md and (out / "frontier.png").is_file()

    # Resuming trains nothing; --report-only writes the same table.
    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("fairtune.pipeline.run_training", no_training)
    assert bench.main(argv) == 0
    assert bench.main([*argv, "--report-only"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert [r["test_mean"] for r in again["rows"]] == [r["test_mean"] for r in result["rows"]]
