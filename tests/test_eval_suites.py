"""Each suite end to end on tiny random models (small slices of the real benchmarks when ../shared is present)."""

import json
import math

import numpy as np
import pytest
from test_eval_models import DATA, loaded, tiny_model

from fairtune.evaluation.base import EvalSettings, options_from_dict
from fairtune.evaluation.suites import get_suite

SETTINGS = EvalSettings(n_bootstrap=30, batch_size=16, progress=False)
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")


def run_suite(name, kind, **options):
    module = get_suite(name)
    return module.run(loaded(kind) if kind else None, options_from_dict(module.Options, options, name), SETTINGS)


def test_unknown_option_is_an_error():
    with pytest.raises(ValueError, match="valid options"):
        options_from_dict(get_suite("crows_pairs").Options, {"nope": 1}, "crows_pairs")


def test_wrong_model_kind_is_an_error():
    with pytest.raises(ValueError, match="needs a model of kind"):
        run_suite("crows_pairs", "classifier")


def test_missing_data_error_names_the_fix(tmp_path, monkeypatch):
    from fairtune.evaluation.data_paths import resolve_data

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAIRTUNE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("fairtune.evaluation.data_paths.shared_data_roots", lambda: [tmp_path])
    with pytest.raises(FileNotFoundError, match="needs a data path"):
        resolve_data(None, "crows_pairs/x.csv", "crows_pairs", "hint")


@needs_data
@pytest.mark.parametrize("kind", ["masked_lm", "causal_lm"])
def test_crows_pairs(kind):
    r = run_suite("crows_pairs", kind, max_examples=12)
    assert 0 <= r.metrics["crows_pairs_score"] <= 100
    assert sum(v["count"] for v in r.breakdown.values()) == 12
    lo, hi = r.intervals["crows_pairs_score"]
    assert lo <= hi


@needs_data
@pytest.mark.parametrize("kind", ["masked_lm", "causal_lm"])
def test_stereoset(kind):
    r = run_suite("stereoset", kind, max_examples=10)
    ss, lms, icat = (r.metrics[k] for k in ("stereoset_ss", "stereoset_lms", "stereoset_icat"))
    assert 0 <= ss <= 100 and 0 <= lms <= 100
    assert icat == pytest.approx(lms * min(ss, 100 - ss) / 50)


def test_stereoset_masked_scores_are_probabilities():
    from fairtune.evaluation.suites.stereoset import masked_filler_scores

    m = loaded("masked_lm")
    scores = masked_filler_scores(
        m.model, m.tokenizer, [("The nurse was kind.", (14, 18)), ("The nurse was unbelievably kind.", (14, 26))]
    )
    assert np.all((scores > 0) & (scores < 1))


@needs_data
@pytest.mark.parametrize("kind", ["causal_lm", "qa"])
def test_bbq(kind):
    r = run_suite("bbq", kind, data=str(DATA / "bbq" / "data" / "Religion.jsonl"), max_examples=16)
    assert 0 <= r.metrics["bbq_accuracy"] <= 1
    for k in ("bbq_bias_score_ambig", "bbq_bias_score_disambig"):
        assert math.isnan(r.metrics[k]) or -1 <= r.metrics[k] <= 1
    assert set(r.breakdown) == {"Religion"}


def test_group_from_predictions_matches_fairlearn(tmp_path):
    fairlearn = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    g = rng.choice(["a", "b", "c"], 300)
    path = tmp_path / "preds.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prediction": int(a), "label": int(b), "group": str(c)}) + "\n" for a, b, c in zip(p, y, g)
        )
    )
    r = run_suite("group", None, predictions=str(path))
    assert r.metrics["demographic_parity_difference"] == pytest.approx(
        fairlearn.demographic_parity_difference(y, p, sensitive_features=g)
    )
    assert r.metrics["equalized_odds_difference"] == pytest.approx(
        fairlearn.equalized_odds_difference(y, p, sensitive_features=g)
    )
    lo, hi = r.intervals["demographic_parity_difference"]
    assert lo <= hi
    assert "a/tpr" in r.intervals


def _group_csv(tmp_path, n=120):
    import pandas as pd

    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        g, y = rng.choice(["female", "male"]), int(rng.integers(0, 2))
        rows.append(
            {
                "text": f"{'she' if g == 'female' else 'he'} thought it was {'great' if y else 'awful'} {i}",
                "label": y,
                "group": g,
            }
        )
    path = tmp_path / "data.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_group_with_a_model(tmp_path):
    r = run_suite("group", "classifier", data=str(_group_csv(tmp_path)))
    assert set(r.breakdown) == {"female", "male"}
    assert 0 <= r.metrics["equalized_odds_difference"] <= 1


def test_counterfactual_suite(tmp_path):
    pytest.importorskip("fairtune.augment")
    r = run_suite("counterfactual", "classifier", data=str(_group_csv(tmp_path, 30)), axes=["gender"])
    assert r.details["counterfactual_pairs"] == 30  # every text has he/she
    assert 0 <= r.metrics["flip_rate"] <= 1 and r.metrics["ctf_gap"] >= 0
    assert r.metrics["flip_rate_gender"] == r.metrics["flip_rate"]


def test_counterfactual_given_column(tmp_path):
    import pandas as pd

    path = tmp_path / "pairs.csv"
    pd.DataFrame({"text": ["he is here", "same"], "cf": ["she is here", "same"]}).to_csv(path, index=False)
    r = run_suite("counterfactual", "classifier", data=str(path), counterfactual_column="cf")
    assert r.details["counterfactual_pairs"] == 1 and "flip_rate_given" in r.metrics


@needs_data
def test_subgroup_auc_on_madlibs():
    r = run_suite("subgroup_auc", "classifier", max_examples=300, min_count=5)
    assert 0 <= r.metrics["bpsn_auc_min"] <= 1
    assert len(r.breakdown) > 5 and all(v["count"] >= 5 for v in r.breakdown.values())
    assert r.metrics["bpsn_auc_min"] == pytest.approx(
        min(v["bpsn_auc"] for v in r.breakdown.values() if not math.isnan(v["bpsn_auc"]))
    )


@needs_data
def test_qa_unqover():
    r = run_suite("qa_unqover", "qa", max_subjects=2, max_attributes=2)
    assert r.details["n_quadruples"] == 4 * 4 * 2
    assert set(r.breakdown) == {"female", "male"}
    assert r.breakdown["female"]["gamma"] == pytest.approx(-r.breakdown["male"]["gamma"])
    assert r.metrics["unqover_position_error"] >= 0


def test_ner_names_with_templates(tmp_path):
    names = tmp_path / "names.csv"
    names.write_text("name,group\nEmily,A\nGreg,A\nLakisha,B\nJamal,B\n")
    r = run_suite("ner_names", "token_classifier", names=str(names))
    assert set(r.breakdown) == {"A", "B"}
    assert r.breakdown["A"]["count"] == 2 * 5
    recalls = [v["recall"] for v in r.breakdown.values()]
    assert r.metrics["ner_name_recall_gap"] == pytest.approx(max(recalls) - min(recalls))


@needs_data
def test_ner_names_on_wnut():
    r = run_suite(
        "ner_names",
        "token_classifier",
        data=str(DATA / "wnut17" / "emerging.test.annotated"),
        max_sentences=5,
        names_per_group=2,
    )
    assert r.details["n_sentences"] == 5 and len(r.breakdown) >= 2


def test_tiny_models_exist():
    assert tiny_model("qa") != tiny_model("masked_lm")
