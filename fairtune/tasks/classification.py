"""Sequence classification adapter: encoders and decoder LLMs, single texts or text pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from fairtune.columns import FAIRTUNE_KEYS, GROUP_KEY, IS_CF_KEY, PAIR_KEY, WEIGHT_KEY
from fairtune.metrics.counterfactual import counterfactual_consistency as consistency
from fairtune.metrics.group import group_fairness_metrics
from fairtune.objectives.counterfactual import find_pairs
from fairtune.tasks.base import SPAN_PROVIDES, EvalContext, TaskAdapter, TaskOutputs


class ClassificationAdapter(TaskAdapter):
    """Per-example cross-entropy, class probabilities and labels: every objective applies."""

    name = "classification"
    label_names = ("labels",)
    provides = (*SPAN_PROVIDES, "labels", "probs", "pair_logits")
    has_class_labels = True

    def model_class(self):
        return AutoModelForSequenceClassification

    def preprocess(self, dataset, tokenizer, data_args, split: str):
        """Tokenize `text_column` (and `text_pair_column`); keep labels and fairtune's columns."""
        text_col, pair_col = data_args.text_column, data_args.text_pair_column
        keep = [c for c in ("labels", *FAIRTUNE_KEYS, WEIGHT_KEY) if c in dataset.column_names]

        def tokenize(batch: dict[str, list]) -> dict[str, Any]:
            texts = ["" if t is None else str(t) for t in batch[text_col]]
            pairs = ["" if t is None else str(t) for t in batch[pair_col]] if pair_col else None
            return tokenizer(texts, pairs, truncation=True, max_length=data_args.max_length)

        remove = [c for c in dataset.column_names if c not in keep]
        return dataset.map(
            tokenize,
            batched=True,
            remove_columns=remove,
            num_proc=data_args.preprocessing_num_workers,
            desc=f"Tokenizing {split}",
        )

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def outputs(self, model_outputs, labels: dict[str, torch.Tensor], representation, extras=None) -> TaskOutputs:
        logits = model_outputs["logits"].float()
        y = labels.get("labels")
        if y is not None:
            losses = F.cross_entropy(logits, y.clamp(min=0), reduction="none") * (y >= 0)
            counts = (y >= 0).float()
        else:
            losses = logits.new_zeros(logits.shape[0])
            counts = logits.new_zeros(logits.shape[0])
        return TaskOutputs(
            losses=losses,
            item_counts=counts,
            representation=representation,
            predictions={"logits": model_outputs["logits"]},
            probs=logits.softmax(-1),
            labels=y,
        )

    def count_items(self, batch: dict[str, Any]) -> torch.Tensor:
        """Loss items in a batch: labelled rows."""
        y = batch.get("labels")
        return (y >= 0).sum() if y is not None else torch.tensor(0)

    def pair_log_probs(self, model_outputs, batch, pairs: torch.Tensor):
        logp = model_outputs["logits"].float().log_softmax(-1)
        return logp[pairs[:, 0]], logp[pairs[:, 1]], None

    def pair_logits(self, model_outputs, batch, pairs: torch.Tensor):
        logits = model_outputs["logits"].float()
        return logits[pairs[:, 0]], logits[pairs[:, 1]], None

    def evaluate(
        self, predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray], context: EvalContext
    ) -> dict[str, Any]:
        """Accuracy, macro-F1, per-group rates, DP/EO/TPR-gap metrics and counterfactual consistency."""
        logits = np.asarray(predictions["logits"], dtype=np.float64)
        y = np.asarray(labels["labels"]).astype(int)
        groups = np.asarray(labels.get(GROUP_KEY, np.full(len(y), -1))).astype(int)
        keep = y >= 0
        if not keep.any():
            return {}
        pred = logits.argmax(-1)
        num_classes = logits.shape[-1]
        metrics = group_fairness_metrics(
            y[keep],
            pred[keep],
            groups[keep],
            labels=list(range(num_classes)),
            group_names=list(context.group_names),
            min_group_size=context.min_group_size,
        )
        per_group = metrics.pop("per_group")
        out: dict[str, Any] = dict(metrics)
        for gname, stats in per_group.items():
            for stat, value in stats.items():
                out[f"group_{gname}_{stat}"] = value
        if context.nested:
            out["per_group"] = per_group
        if PAIR_KEY in labels and IS_CF_KEY in labels:
            out.update(counterfactual_consistency(logits, np.asarray(labels[PAIR_KEY]), np.asarray(labels[IS_CF_KEY])))
        return out


def counterfactual_consistency(logits: np.ndarray, pair_id: np.ndarray, is_cf: np.ndarray) -> dict[str, float]:
    """Over (example, counterfactual) pairs: how often the predicted class flips, and the counterfactual token
    fairness gap (Garg et al. 2019), from `fairtune.metrics.counterfactual`."""
    pairs = find_pairs(torch.as_tensor(pair_id), torch.as_tensor(is_cf)).numpy()
    if not len(pairs):
        return {}
    z = logits - logits.max(-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    result = consistency(probs[pairs[:, 0]], probs[pairs[:, 1]])
    return {k: result[k] for k in ("flip_rate", "ctf_gap", "counterfactual_pairs")}
