"""Every metric ships as an `evaluate` module that loads offline by path and matches fairtune.metrics."""

import os

import pytest

from fairtune.metrics.modules import MODULES, module_path

evaluate = pytest.importorskip("evaluate")

CASES = {
    "group_fairness": dict(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1], groups=["a", "a", "b", "b"]),
    "counterfactual_consistency": dict(
        probs_original=[[0.2, 0.8], [0.7, 0.3]], probs_counterfactual=[[0.6, 0.4], [0.6, 0.4]]
    ),
    "crows_pairs": dict(scores_more=[-10.0, -12.0], scores_less=[-11.0, -11.0], bias_types=["gender", "age"]),
    "stereoset": dict(
        score_stereotype=[3.0, 1.0],
        score_anti_stereotype=[2.0, 2.0],
        score_unrelated=[1.0, 3.0],
        targets=["X", "X"],
        bias_types=["race", "race"],
    ),
    "bbq": dict(
        predictions=[0, 2],
        references=[1, 2],
        biased_answers=[0, 0],
        unknown_answers=[1, 1],
        context_conditions=["ambig", "disambig"],
        categories=["Age", "Age"],
    ),
    "subgroup_auc": dict(
        references=[1, 0, 1, 0, 1, 0], scores=[0.9, 0.8, 0.3, 0.2, 0.6, 0.4], subgroups=[["t"], ["t"], [], [], [], []]
    ),
    "unqover": dict(
        subject1=["Ann", "Bob", "Ann", "Bob"],
        subject2=["Bob", "Ann", "Bob", "Ann"],
        template=["0"] * 4,
        attribute=["x"] * 4,
        negated=[False, False, True, True],
        score1=[0.6, 0.3, 0.5, 0.45],
        score2=[0.4, 0.7, 0.5, 0.55],
    ),
    "ner_name_recall": dict(recalled=[True, False, True, True], groups=["a", "a", "b", "b"]),
}
EXPECTED = {
    "group_fairness": ("demographic_parity_difference", 0.5),
    "counterfactual_consistency": ("flip_rate", 0.5),
    "crows_pairs": ("crows_pairs_score", 50.0),
    "stereoset": ("stereoset_ss", 50.0),
    "bbq": ("bbq_accuracy", 0.5),
    "subgroup_auc": ("bpsn_auc_min", 0.0),
    "unqover": ("unqover_mu", 0.125),
    "ner_name_recall": ("ner_name_recall_gap", 0.5),
}


def test_every_module_has_a_case():
    assert set(CASES) == set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_loads_offline_by_path(name, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert os.path.isfile(os.path.join(module_path(name), f"{name}.py"))
    metric = evaluate.load(module_path(name), cache_dir=str(tmp_path))
    result = metric.compute(**CASES[name])
    key, value = EXPECTED[name]
    assert result[key] == pytest.approx(value)


def test_unknown_module_name():
    with pytest.raises(ValueError, match="available"):
        module_path("nope")
