"""Model selection: Pareto front, fairlib's DTO and constraints against a hand-made table; parsing errors."""

from __future__ import annotations

import math

import pytest

from fairtune.selection import (
    Constraint,
    NoQualifyingRunError,
    dto,
    fairness_scores,
    higher_is_better,
    pareto_front,
    parse_constraints,
    parse_criterion,
    select,
    selection_metrics,
)

# accuracy, tpr_gap_rms: A ignores fairness, B and C trade a little, D is dominated by B, E predicts one class.
TABLE = {
    "A": {"accuracy": 0.90, "tpr_gap_rms": 0.40},
    "B": {"accuracy": 0.89, "tpr_gap_rms": 0.10},
    "C": {"accuracy": 0.80, "tpr_gap_rms": 0.05},
    "D": {"accuracy": 0.85, "tpr_gap_rms": 0.20},
    "E": {"accuracy": 0.50, "tpr_gap_rms": 0.00},
}
ROWS = list(TABLE.values())
NAMES = list(TABLE)


def test_pareto_front_hand_table():
    front = pareto_front([r["accuracy"] for r in ROWS], [r["tpr_gap_rms"] for r in ROWS])
    assert dict(zip(NAMES, front)) == {"A": True, "B": True, "C": True, "D": False, "E": True}


def test_pareto_ties_and_nan():
    assert pareto_front([0.9, 0.9], [0.1, 0.1]) == [True, True]  # equal points do not dominate each other
    assert pareto_front([0.9, 0.8, math.nan], [0.1, 0.1, 0.0]) == [True, False, False]


def test_dto_matches_fairlib_definition_by_hand():
    fair = fairness_scores([r["tpr_gap_rms"] for r in ROWS], "tpr_gap_rms")
    assert fair == pytest.approx([0.6, 0.9, 0.95, 0.8, 1.0])
    got = dict(zip(NAMES, dto([r["accuracy"] for r in ROWS], fair)))
    # utopia: accuracy 0.90 (A), fairness 1 - 0.0 (E); distance of (p/0.9, f/1.0) to (1, 1)
    expected = {
        "A": 0.4,
        "B": math.hypot(0.89 / 0.9 - 1, 0.1),
        "C": math.hypot(0.80 / 0.9 - 1, 0.05),
        "D": math.hypot(0.85 / 0.9 - 1, 0.2),
        "E": math.hypot(0.50 / 0.9 - 1, 0.0),
    }
    assert got == pytest.approx(expected)
    assert got["B"] == pytest.approx(0.10062, abs=1e-5)


def test_select_by_dto_picks_b():
    sel = select(ROWS, parse_criterion("dto"))
    assert NAMES[sel.index] == "B"
    assert sel.criterion.performance == "accuracy" and sel.criterion.fairness == "tpr_gap_rms"
    assert sel.utopia == {"accuracy": 0.90, "tpr_gap_rms": 0.0}


@pytest.mark.parametrize(
    ("criterion", "expected"),
    [
        ("tpr_gap_rms<=0.1", "B"),
        ("tpr_gap_rms<=0.05", "C"),
        ("tpr_gap_rms<0.05", "E"),
        ("tpr_gap_rms <= 0.5", "A"),
        ("accuracy>=0.85, tpr_gap_rms<=0.2", "B"),
        ("tpr_gap_rms<=20% and accuracy>=0.8", "B"),
    ],
)
def test_select_by_constraint(criterion, expected):
    assert NAMES[select(ROWS, parse_criterion(criterion)).index] == expected


def test_constraint_with_other_task_metric():
    rows = [{**r, "macro_f1": f} for r, f in zip(ROWS, [0.5, 0.6, 0.9, 0.7, 0.3])]
    sel = select(rows, parse_criterion("tpr_gap_rms<=0.2", performance="macro_f1"))
    assert NAMES[sel.index] == "C"


def test_no_qualifying_run_names_the_closest():
    with pytest.raises(NoQualifyingRunError, match=r"no run satisfies tpr_gap_rms<=-0.01.*tpr_gap_rms=0.0000"):
        select(ROWS, parse_criterion("tpr_gap_rms<=-0.01"))
    with pytest.raises(NoQualifyingRunError, match="Loosen the constraint"):
        select(ROWS, parse_criterion("accuracy>=0.95"))


def test_constraint_on_unreported_metric():
    with pytest.raises(ValueError, match="no run reports 'tpr_gap'.*known metrics: accuracy, tpr_gap_rms"):
        select(ROWS, parse_criterion("tpr_gap<=0.1"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty constraint"),
        ("tpr_gap_rms=<0.05", "cannot read the constraint"),
        ("tpr_gap_rms<=abc", "cannot read the constraint"),
        ("<=0.05", "cannot read the constraint"),
        ("tpr_gap_rms<=0.05,", None),  # a trailing comma is tolerated
        ("tpr_gap_rms<=1.2.3", "is not a number"),
    ],
)
def test_constraint_parsing_errors(text, message):
    if message is None:
        assert parse_constraints(text) == [Constraint("tpr_gap_rms", "<=", 0.05)]
        return
    with pytest.raises(ValueError, match=message):
        parse_constraints(text)


def test_constraint_parsing_values():
    cs = parse_constraints("accuracy>=90% and leakage_probe_accuracy<0.6")
    assert cs == [Constraint("accuracy", ">=", 0.9), Constraint("leakage_probe_accuracy", "<", 0.6)]
    assert str(cs[0]) == "accuracy>=0.9"
    assert cs[0].satisfied({"accuracy": 0.9}) and not cs[0].satisfied({"accuracy": math.nan})
    assert cs[1].violation({"leakage_probe_accuracy": 0.7}) == pytest.approx(0.1)
    crit = parse_criterion("tpr_gap_rms<=0.05")
    assert crit.kind == "constraint" and crit.fairness == "tpr_gap_rms"
    assert "best accuracy subject to tpr_gap_rms<=0.05" in crit.resolve(TABLE["A"]).describe()


def test_metric_directions():
    for name in ("tpr_gap_rms", "equalized_odds_difference", "flip_rate", "eval_dto", "leakage_probe_accuracy"):
        assert not higher_is_better(name), name
    for name in ("accuracy", "macro_f1", "demographic_parity_ratio", "exact_match", "eval_f1"):
        assert higher_is_better(name), name


def test_selection_metrics_for_one_evaluation():
    got = selection_metrics({"eval_accuracy": 0.9, "eval_tpr_gap_rms": 0.1, "eval_loss": 0.3})
    assert got == {"dto": pytest.approx(math.hypot(0.1, 0.1))}  # distance to (accuracy 1, gap 0)
    ref = selection_metrics({"accuracy": 0.9, "tpr_gap_rms": 0.1}, reference={"accuracy": 0.9, "tpr_gap_rms": 0.1})
    assert ref["dto"] == pytest.approx(0.0)
    assert selection_metrics({"eval_loss": 0.3}) == {}
    # QA-style percentages: F1 80 with a 10-point F1 gap
    qa = selection_metrics({"f1": 80.0, "f1_gap": 10.0})
    assert qa["dto"] == pytest.approx(math.hypot(0.2, 0.1))


def test_selection_metrics_falls_back_to_equalized_odds():
    got = selection_metrics({"accuracy": 0.8, "equalized_odds_difference": 0.3})
    assert got["dto"] == pytest.approx(math.hypot(0.2, 0.3))


def test_dto_as_metric_for_best_model(tiny_bert_dir, tmp_path):
    """Early stopping / load_best_model_at_end over `eval_dto` (lower is better) once the trainer reports it."""
    from conftest import biased_rows
    from helpers import build_trainer

    trainer = build_trainer(
        tiny_bert_dir,
        biased_rows(48, 0.9, seed=1),
        biased_rows(24, 0.5, seed=2),
        output_dir=tmp_path / "run",
        max_steps=4,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
        metric_for_best_model="dto",
        eo_weight=1.0,
    )
    assert trainer.args.greater_is_better is False
    trainer.train()
    evals = [h for h in trainer.state.log_history if "eval_dto" in h]
    assert len(evals) == 2
    assert trainer.state.best_metric == pytest.approx(min(h["eval_dto"] for h in evals))


@pytest.mark.parametrize(
    "metric, expected",
    [("tpr_gap_rms", False), ("eval_equalized_odds_difference", False), ("flip_rate", False), ("dto", False),
     ("accuracy", True), ("demographic_parity_ratio", True), ("eval_loss", False)],
)  # fmt: skip
def test_metric_for_best_model_direction_follows_the_metric(metric, expected, tmp_path):
    """A fairness gap as `metric_for_best_model` is minimised (the Trainer alone would maximise any non-loss name)."""
    from fairtune.config import FairTrainingArguments

    args = FairTrainingArguments(output_dir=str(tmp_path), metric_for_best_model=metric, use_cpu=True)
    assert args.greater_is_better is expected
    explicit = FairTrainingArguments(
        output_dir=str(tmp_path), metric_for_best_model=metric, greater_is_better=not expected, use_cpu=True
    )
    assert explicit.greater_is_better is (not expected)  # an explicit choice is kept
