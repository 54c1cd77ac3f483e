"""Post-hoc fixes of a finished run, measured exactly as the run's own report: the rows a sweep puts beside it.

A user's cheapest alternatives to training-time debiasing are post-hoc: per-group decision thresholds on the
trained model (Hardt et al. 2016; Cruz & Hardt 2024 find they match most in-training methods) and LEACE concept
erasure folded into its head. `posthoc_report` applies one of them to a trained run and scores it on the split the
run's `fairness_report.json` describes, through the same trainer metrics (group metrics, leakage probe, DTO), so
the numbers sit in one table with the in-training methods:

- `thresholds`: fitted on validation scores. When the report is on validation itself, it is cross-fitted
  (stratified folds by group x label: each fold's rows are decided by rules fitted on the other folds), so the
  row is not scored on the data it was fitted on. Thresholds need each row's group at inference; the flip rate and
  CTF gap (counterfactual copies swap the group, so the rule changes with it) are not reported for this row.
- `leace` (or `orth`): the eraser fitted on the training split's head inputs and folded into the head (the
  recipe key `erasure: leace` does the same after training); the erased model is saved with the report.

Each report goes to `RUN/posthoc/<method>/fairness_report.json`, stamped with the base report's content hash, so
a resumed sweep recomputes it only when the run was retrained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairtune.columns import GROUP_KEY
from fairtune.config import OBJECTIVE_WEIGHTS, DataArguments, FairTrainingArguments, ModelArguments
from fairtune.pipeline import (
    COUNTERFACTUAL_KEYS,
    erase_after_training,
    load_model,
    prepare_data,
    report_split_of,
    split_metrics,
    split_report,
)
from fairtune.reporting import write_fairness_report
from fairtune.trainer import CONFIG_FILE, FairTrainer

POSTHOC_METHODS = ("thresholds", "leace", "orth")
POSTHOC_DIR = "posthoc"
REPORT = "fairness_report.json"
THRESHOLD_CRITERIA = ("equal_opportunity", "equalized_odds", "demographic_parity")


def parse_posthoc(text: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`thresholds,leace` -> a checked list of post-hoc methods (ValueError names the unknown one)."""
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    methods = [m.strip() for m in items if m.strip()]
    unknown = [m for m in methods if m not in POSTHOC_METHODS]
    if unknown:
        raise ValueError(f"--posthoc: unknown method(s) {unknown}; choose from {', '.join(POSTHOC_METHODS)}.")
    return list(dict.fromkeys(methods))


def report_dir(run_dir: str | Path, method: str) -> Path:
    """Where a run's post-hoc report (and, for erasure, its model) goes."""
    return Path(run_dir) / POSTHOC_DIR / method


def _stamp(run_dir: Path, method: str, criterion: str, folds: int, seed: int) -> str:
    base = (run_dir / REPORT).read_bytes()
    return hashlib.sha256(base + f"|{method}|{criterion}|{folds}|{seed}".encode()).hexdigest()[:16]


def cached_report(
    run_dir: str | Path, method: str, criterion: str = "equalized_odds", folds: int = 2, seed: int = 0
) -> dict[str, Any] | None:
    """The stored post-hoc report when it belongs to the run's current report and these settings, else None."""
    run_dir = Path(run_dir)
    path = report_dir(run_dir, method) / REPORT
    if not path.is_file() or not (run_dir / REPORT).is_file():
        return None
    report = json.loads(path.read_text())
    return report if report.get("posthoc_stamp") == _stamp(run_dir, method, criterion, folds, seed) else None


def crossfit_folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold id per row, stratified by (group, label) cell and seeded, so every fold sees every cell."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=int)
    for cell in sorted({(int(g), int(y)) for g, y in zip(groups, labels)}):
        rows = np.flatnonzero((groups == cell[0]) & (labels == cell[1]))
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def _group_values(groups: np.ndarray) -> np.ndarray:
    """Group ids with missing groups (-1) as None, which the threshold rules leave on the default rule."""
    return np.asarray([int(g) if g >= 0 else None for g in groups], dtype=object)


def threshold_predictions(
    probs: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    criterion: str,
    *,
    fit: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    folds: int = 2,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Class predictions under per-group rules: fitted on `fit` (probs, labels, groups), or cross-fitted on the rows
    themselves when `fit` is None. Returns the predictions and the rules fitted on all the fitting rows."""
    from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds

    known = groups >= 0
    if fit is not None:
        f_probs, f_labels, f_groups = fit
        f_known = f_groups >= 0
        rules = fit_thresholds(f_probs[f_known], f_labels[f_known], _group_values(f_groups[f_known]), criterion)
        return apply_thresholds(probs, _group_values(groups), rules), rules
    fold = crossfit_folds(labels, groups, folds, seed)
    pred = probs.argmax(-1).copy()
    for k in range(folds):
        train, test = (fold != k) & known, fold == k
        rules = fit_thresholds(probs[train], labels[train], _group_values(groups[train]), criterion)
        pred[test] = apply_thresholds(probs[test], _group_values(groups[test]), rules)
    rules = fit_thresholds(probs[known], labels[known], _group_values(groups[known]), criterion)
    return pred, rules


def _scored(trainer: FairTrainer, dataset) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Predictions of a split (the raw PredictionOutput), its class probabilities, labels and group ids."""
    out = trainer.predict(dataset)
    label_ids = out.label_ids if isinstance(out.label_ids, tuple) else (out.label_ids,)
    cols = dict(zip(trainer.label_names, label_ids))
    groups = np.asarray(cols.get(GROUP_KEY, np.full(len(label_ids[0]), -1))).astype(int)
    probs = torch.softmax(torch.as_tensor(np.asarray(out.predictions["logits"]), dtype=torch.float64), -1).numpy()
    return out, probs, np.asarray(cols["labels"]), groups


def thresholds_report(
    trainer: FairTrainer, processed: dict[str, Any], split: str, criterion: str, folds: int, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report split scored with per-group rules (cross-fitted when the split is validation)."""
    from transformers.trainer_utils import EvalPrediction

    out, probs, labels, groups = _scored(trainer, processed[split])
    fit = None
    if split != "validation":
        if "validation" not in processed:
            raise ValueError("post-hoc thresholds are fitted on the validation split; this run has none.")
        _, v_probs, v_labels, v_groups = _scored(trainer, processed["validation"])
        fit = (v_probs, v_labels, v_groups)
    pred, rules = threshold_predictions(probs, labels, groups, criterion, fit=fit, folds=folds, seed=seed)
    decided = {**out.predictions, "logits": np.eye(probs.shape[1])[pred]}  # argmax of these is the decision
    trainer.nested_report = True
    try:
        metrics = trainer.compute_metrics(EvalPrediction(predictions=decided, label_ids=out.label_ids))
    finally:
        trainer.nested_report = False
    report = split_metrics(metrics, split)
    for key in COUNTERFACTUAL_KEYS:
        report.pop(key, None)
    report.update(posthoc_fitted_on="validation (cross-fitted)" if fit is None else "validation")
    return report, rules


def posthoc_report(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: FairTrainingArguments,
    method: str,
    *,
    criterion: str = "equalized_odds",
    folds: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Apply a post-hoc `method` to the trained run in `training_args.output_dir`; write and return its report.

    The arguments are the run's own (as the sweep parses them); the trained model is read from its output dir.
    """
    if method not in POSTHOC_METHODS:
        raise ValueError(f"unknown post-hoc method {method!r}; choose from {', '.join(POSTHOC_METHODS)}.")
    if criterion not in THRESHOLD_CRITERIA:
        raise ValueError(f"threshold criterion must be one of {', '.join(THRESHOLD_CRITERIA)}, got {criterion!r}.")
    run_dir = Path(training_args.output_dir)
    if not (run_dir / REPORT).is_file():
        raise ValueError(f"{run_dir}: no {REPORT}; the run has not finished.")
    if model_args.use_peft and method != "thresholds":
        raise ValueError("post-hoc erasure folds into a full head; merge the LoRA adapter first.")
    if model_args.task != "classification" and method == "thresholds":
        raise ValueError(f"post-hoc thresholds are for classification, not {model_args.task}.")
    eval_args = dataclasses.replace(
        training_args,
        **{w: 0.0 for w in OBJECTIVE_WEIGHTS},
        objectives=None,
        erasure="none",
        output_dir=str(report_dir(run_dir, method)),
        overwrite_output_dir=True,
        report_to="none",
    )
    trained = dataclasses.replace(model_args, model_name_or_path=str(run_dir), use_peft=False, load_in_4bit=False)
    config = json.loads((run_dir / CONFIG_FILE).read_text()) if (run_dir / CONFIG_FILE).is_file() else None
    if config is not None:  # what a card of the post-hoc model says: the run's recipe, with the erasure it got
        config.update(output_dir=str(report_dir(run_dir, method)), posthoc=method, posthoc_base=str(run_dir))
        if method != "thresholds":
            config["erasure"] = method
    prep = prepare_data(trained, data_args, eval_args)
    model = load_model(trained, prep.adapter, prep.tokenizer, prep.label_list)
    trainer = FairTrainer(
        model=model,
        args=eval_args,
        fairtune_config=config,
        task_adapter=prep.adapter,
        group_names=prep.enc.group_names,
        label_list=prep.label_list,
        processing_class=prep.tokenizer,
        data_collator=prep.adapter.collator(prep.tokenizer),
    )
    split = report_split_of(prep.processed)
    if split is None:
        raise ValueError(f"{run_dir}: the run has no validation or test split to report on.")
    out = report_dir(run_dir, method)
    out.mkdir(parents=True, exist_ok=True)
    if method == "thresholds":
        report, rules = thresholds_report(trainer, prep.processed, split, criterion, folds, seed)
        from fairtune.posthoc.thresholds import save_thresholds

        rules["group_names"] = list(prep.enc.group_names)  # the rules are keyed by group id
        save_thresholds(out, rules)
    else:
        if "train" not in prep.processed:
            raise ValueError(f"{run_dir}: post-hoc erasure is fitted on the training split; the run has none.")
        info = erase_after_training(trainer, prep.processed, len(prep.enc.group_names), method=method)
        report = split_report(trainer, prep, split)
        report.update({f"erasure_{k}": v for k, v in info.items() if isinstance(v, (int, float))})
        trainer.save_model(str(out))
    report.update(
        posthoc=method,
        posthoc_base=str(run_dir),
        posthoc_stamp=_stamp(run_dir, method, criterion, folds, seed),
        **({"posthoc_criterion": criterion} if method == "thresholds" else {}),
    )
    write_fairness_report(
        out, report, title=f"fairtune fairness report ({split}, + {method})", label_list=prep.label_list
    )
    return report
