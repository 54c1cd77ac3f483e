"""Named-entity recognition adapter: word-aligned token labels, entity-level metrics, per-word CLP alignment.

Rows are `tokens` (a list of words) and `ner_tags` (per word: tag strings, or ints named by a ClassLabel feature or
the `label_list` recipe key). Each word's first sub-token carries its label, the other sub-tokens -100 (or, with
`label_all_tokens`, the word's tag with B- turned into I-), as in transformers' `run_ner.py`.

The per-example task loss is the SUM of the cross-entropies of its labelled tokens and its item count the number of
those tokens, so the trainer's `sum / global token count` equals the token-level mean of one big batch. Group
objectives see the per-example MEAN token loss instead (`extras["group_losses"]`), so a group's loss does not grow
with its sentence length.

Extra batch columns (padded by `TokenExtrasCollator`, popped before the forward by `pop_model_extras`):
- `clp_word`: for the first sub-token of each word, the index of the aligned word of the pair's ORIGINAL example
  (the word itself for originals; through `cf_token_map` for counterfactuals), else -1. CLP compares label
  distributions at tokens of the two rows that share a `clp_word` value, so a name can change its token count.
- `entity_mask` (only with `ner_pooling: entity`): 1 on every sub-token of a person entity (PER, person, ...); the
  pooled representation that the adversary sees is their mean (the first token when a row has none).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from fairtune.columns import FAIRTUNE_KEYS, GROUP_KEY, WEIGHT_KEY
from fairtune.metrics.ner import ner_metrics
from fairtune.metrics.tags import PREFIX_ORDER, is_person_type, split_tag
from fairtune.tasks.base import (
    CLP_WORD_KEY,
    SPAN_PROVIDES,
    EvalContext,
    TaskAdapter,
    TaskOutputs,
    TokenExtrasCollator,
    first_or_last_token,
    group_metric_table,
)

ENTITY_MASK_KEY = "entity_mask"
TOKENS_COLUMN, TAGS_COLUMN, TOKEN_MAP_COLUMN = "tokens", "ner_tags", "cf_token_map"
POOLINGS = ("first", "entity")


def sort_tags(tags: Sequence[str]) -> list[str]:
    """A stable label order: O first, then by entity type and prefix (B, I, E, S)."""
    uniq = set(tags)
    rest = sorted(uniq - {"O"}, key=lambda t: (split_tag(t)[1], PREFIX_ORDER.get(split_tag(t)[0], 9), t))
    return (["O"] if "O" in uniq else []) + rest


def read_conll(path: str | Path) -> list[dict[str, Any]]:
    """Rows `{"tokens": [...], "ner_tags": [...]}` from a CoNLL file (word TAB-or-space tag, blank line between)."""
    rows, tokens, tags = [], [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.strip().split()
        if not parts or line.startswith("-DOCSTART-"):
            if tokens:
                rows.append({"tokens": tokens, "ner_tags": tags})
            tokens, tags = [], []
            continue
        tokens.append(parts[0])
        tags.append(parts[-1] if len(parts) > 1 else "O")
    if tokens:
        rows.append({"tokens": tokens, "ner_tags": tags})
    return rows


def conll_to_jsonl(src: str | Path, dst: str | Path, limit: int | None = None) -> Path:
    """Write a CoNLL file as jsonl rows (`tokens`, `ner_tags`) that `train_file`/`validation_file` can load."""
    rows = read_conll(src)[:limit] if limit else read_conll(src)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return dst


def word_tokenizer(tokenizer):
    """The tokenizer, reloaded with `add_prefix_space=True` when a byte-level BPE needs it for pre-split words."""
    if getattr(tokenizer, "add_prefix_space", None) is False and tokenizer.name_or_path:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(tokenizer.name_or_path, add_prefix_space=True)
        except (OSError, ValueError, TypeError):
            return tokenizer
    return tokenizer


def invert_token_map(token_map: Sequence[Sequence[int]] | None, num_words: int) -> list[int]:
    """For each word of a row, the source word it aligns to (-1 if none), from the row's `cf_token_map`.

    A source word maps to its `[start, end)` range of new words; the first source word of a range aligns with the
    range's first new word. Other words of a group whose token count changed stay unaligned.
    """
    if token_map is None:
        return list(range(num_words))
    src = [-1] * num_words
    seen: set[tuple[int, int]] = set()
    for k, (start, end) in enumerate(token_map):
        key = (int(start), int(end))
        if key in seen or not 0 <= start < num_words or end <= start:
            continue
        seen.add(key)
        src[int(start)] = k
    return src


class NerAdapter(TaskAdapter):
    """Token classification with word-aligned labels; objectives on per-example losses and pooled vectors.

    Args:
        pooling: `first` (first token) or `entity` (mean over person-entity tokens); `ner_pooling` overrides it.
        label_list: tag names (default: from the data, a ClassLabel feature or the `label_list` recipe key).
    """

    name = "ner"
    label_names = ("labels",)
    provides = (*SPAN_PROVIDES, "pair_logits")
    has_class_labels = False
    extra_columns = (CLP_WORD_KEY, ENTITY_MASK_KEY)

    def __init__(self, pooling: str = "first", label_list: Sequence[str] | None = None) -> None:
        """Choose the pooling and (optionally) the tag names; both are fixed for the adapter's life."""
        if pooling not in POOLINGS:
            raise ValueError(f"`ner_pooling`: unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}.")
        self.pooling = pooling
        self.label_list: list[str] = list(label_list or [])

    def configured(self, data_args, label_list: Sequence[str]) -> NerAdapter:
        """A new adapter with the run's pooling (`ner_pooling`) and tag names."""
        return NerAdapter(getattr(data_args, "ner_pooling", None) or self.pooling, label_list)

    def model_class(self):
        return AutoModelForTokenClassification

    # ---- labels ----------------------------------------------------------------------------------------------
    def resolve_labels(self, encoded, data_args, enc=None) -> list[str]:
        """The tag list (`label_list`, else a ClassLabel feature, else the tags of all splits), checked against
        every split."""
        splits = dict(encoded)
        ref_name = "train" if "train" in splits else next(iter(splits))
        for split, ds in splits.items():
            for col in (TOKENS_COLUMN, TAGS_COLUMN):
                if col not in ds.column_names:
                    raise ValueError(
                        f"task ner: column {col!r} is not in the {split} data (columns: {ds.column_names}); NER rows "
                        "need `tokens` (list of words) and `ner_tags` (list of tags); rename the columns."
                    )
        ref = splits[ref_name]
        configured = list(getattr(data_args, "label_list", None) or [])
        inner = getattr(ref.features.get(TAGS_COLUMN), "feature", None)
        names = list(getattr(inner, "names", None) or [])
        if configured:
            label_list = configured
        elif names:
            label_list = names
        else:
            values = [t for ds in splits.values() for tags in ds[TAGS_COLUMN] for t in tags]
            if values and all(isinstance(v, (int, np.integer)) for v in values):
                raise ValueError(
                    "`label_list`: ner_tags are ints without names; set `label_list` to the tag names in id order "
                    "(e.g. label_list: [O, B-person, I-person, ...])."
                )
            label_list = sort_tags([str(v) for v in values])
        if len(label_list) < 2:
            raise ValueError(f"`label_list`: need at least two NER tags, got {label_list}.")
        for split, ds in splits.items():
            unknown = sorted(
                {str(t) for tags in ds[TAGS_COLUMN] for t in tags if not isinstance(t, (int, np.integer))}
                - set(label_list)
            )
            bad_ids = {int(t) for tags in ds[TAGS_COLUMN] for t in tags if isinstance(t, (int, np.integer))}
            bad_ids = sorted(i for i in bad_ids if not 0 <= i < len(label_list))
            if unknown or bad_ids:
                raise ValueError(
                    f"`label_list`: the {split} split has tags outside the label list {label_list}: "
                    f"{unknown or bad_ids}. Add them to the training data or to `label_list`."
                )
        return label_list

    @staticmethod
    def _label_maps(label_list: Sequence[str]) -> tuple[dict[str, int], list[int], np.ndarray]:
        to_id = {t: i for i, t in enumerate(label_list)}
        b_to_i = []
        for i, tag in enumerate(label_list):
            prefix, etype = split_tag(tag)
            cont = f"I{tag[1]}{etype}" if prefix == "B" else tag
            b_to_i.append(to_id.get(cont, i))
        person = np.array([is_person_type(split_tag(t)[1]) for t in label_list], dtype=bool)
        return to_id, b_to_i, person

    # ---- preprocessing ---------------------------------------------------------------------------------------
    def preprocess(self, dataset, tokenizer, data_args, split: str):
        """Tokenize pre-split words, align labels with `word_ids`, add `clp_word` (and `entity_mask`)."""
        label_list = self.label_list or self.resolve_labels({split: dataset}, data_args)
        tok = word_tokenizer(tokenizer)
        to_id, b_to_i, person = self._label_maps(label_list)
        label_all = bool(data_args.label_all_tokens)
        with_mask = (getattr(data_args, "ner_pooling", None) or self.pooling) == "entity"
        has_map = TOKEN_MAP_COLUMN in dataset.column_names
        keep = [c for c in (*FAIRTUNE_KEYS, WEIGHT_KEY) if c in dataset.column_names]

        def tokenize(batch: dict[str, list]) -> dict[str, Any]:
            words = [[str(w) for w in ws] for ws in batch[TOKENS_COLUMN]]
            enc = tok(words, is_split_into_words=True, truncation=True, max_length=data_args.max_length)
            labels, clp, masks = [], [], []
            for i, tags in enumerate(batch[TAGS_COLUMN]):
                ids = [int(t) if isinstance(t, (int, np.integer)) else to_id[str(t)] for t in tags]
                src = invert_token_map(batch[TOKEN_MAP_COLUMN][i] if has_map else None, len(ids))
                row_labels, row_clp, row_mask, prev = [], [], [], None
                for w in enc.word_ids(i):
                    if w is None:
                        row_labels.append(-100)
                        row_clp.append(-1)
                        row_mask.append(0)
                    else:
                        first = w != prev
                        row_labels.append(ids[w] if first else (b_to_i[ids[w]] if label_all else -100))
                        row_clp.append(src[w] if first else -1)
                        row_mask.append(int(person[ids[w]]))
                    prev = w
                labels.append(row_labels)
                clp.append(row_clp)
                masks.append(row_mask)
            out = dict(enc)
            out["labels"], out[CLP_WORD_KEY] = labels, clp
            if with_mask:
                out[ENTITY_MASK_KEY] = masks
            return out

        return dataset.map(
            tokenize,
            batched=True,
            remove_columns=[c for c in dataset.column_names if c not in keep],
            num_proc=data_args.preprocessing_num_workers,
            desc=f"Tokenizing and aligning NER labels ({split})",
        )

    def collator(self, tokenizer):
        """DataCollatorForTokenClassification (labels padded with -100) plus the padded extra columns."""
        return TokenExtrasCollator(
            DataCollatorForTokenClassification(tokenizer),
            {CLP_WORD_KEY: -1, ENTITY_MASK_KEY: 0},
            padding_side=getattr(tokenizer, "padding_side", "right"),
        )

    # ---- training-time hooks ---------------------------------------------------------------------------------
    def pool(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None,
        extras: dict[str, Any] | None = None,
        is_decoder: bool = False,
    ) -> torch.Tensor:
        """First token (or last for decoders); where the batch carries an `entity_mask` (`ner_pooling: entity`),
        the mean over person-entity tokens (rows without one keep the first token)."""
        base = first_or_last_token(hidden, attention_mask, is_decoder)
        mask = (extras or {}).get(ENTITY_MASK_KEY)
        if mask is None or tuple(mask.shape) != tuple(hidden.shape[:2]):
            return base
        m = mask.to(hidden.dtype).unsqueeze(-1)
        n = m.sum(1)
        entity = (hidden * m).sum(1) / n.clamp(min=1)
        return torch.where(n > 0, entity, base)

    def outputs(self, model_outputs, labels: dict[str, torch.Tensor], representation, extras=None) -> TaskOutputs:
        """Per-example summed token cross-entropy, its labelled-token count, and the mean for group objectives."""
        logits = model_outputs["logits"]
        y = labels.get("labels")
        if y is None:
            losses = logits.new_zeros(logits.shape[0], dtype=torch.float32)
            counts = torch.zeros_like(losses)
        else:
            valid = y != -100
            tok = F.cross_entropy(logits.float().transpose(1, 2), y.clamp(min=0), reduction="none") * valid
            losses = tok.sum(1)
            counts = valid.sum(1).to(losses.dtype)
        return TaskOutputs(
            losses=losses,
            item_counts=counts,
            representation=representation,
            predictions={"logits": logits},
            extras={"group_losses": losses / counts.clamp(min=1)},
        )

    def count_items(self, batch: dict[str, Any]) -> torch.Tensor:
        """Loss items in a batch: labelled tokens."""
        y = batch.get("labels")
        return (y != -100).sum() if y is not None else torch.tensor(0)

    def pair_log_probs(self, model_outputs, batch: dict[str, Any], pairs: torch.Tensor):
        """Per-word label log-distributions `[P, W, C]` of each pair, aligned through `clp_word`, and the mask."""
        logp = model_outputs["logits"].float().log_softmax(-1)
        words = batch.get(CLP_WORD_KEY)
        if words is None:
            raise ValueError("clp_weight on NER needs the `clp_word` column; preprocess with NerAdapter.preprocess.")
        return aligned_word_log_probs(logp, words.to(logp.device), pairs)

    def pair_logits(self, model_outputs, batch: dict[str, Any], pairs: torch.Tensor):
        """Per-word raw logits `[P, W, C]` of each pair, aligned as in `pair_log_probs`."""
        logits = model_outputs["logits"].float()
        words = batch.get(CLP_WORD_KEY)
        if words is None:
            raise ValueError("clp_weight on NER needs the `clp_word` column; preprocess with NerAdapter.preprocess.")
        return aligned_word_log_probs(logits, words.to(logits.device), pairs)

    # ---- evaluation ------------------------------------------------------------------------------------------
    def evaluate(
        self, predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray], context: EvalContext
    ) -> dict[str, Any]:
        """Entity-level precision/recall/F1 (seqeval), token accuracy, per-group F1 and F1 gaps."""
        names = list(context.label_list or self.label_list)
        pred = np.asarray(predictions["logits"]).argmax(-1)
        gold = np.asarray(labels["labels"])
        true_tags, pred_tags = [], []
        for p_row, y_row in zip(pred, gold):
            keep = y_row != -100
            true_tags.append([names[int(t)] for t in y_row[keep]])
            pred_tags.append([names[int(t)] if 0 <= int(t) < len(names) else "O" for t in p_row[keep]])
        metrics = ner_metrics(true_tags, pred_tags)
        per_type = metrics.pop("per_type")
        out: dict[str, Any] = dict(metrics)
        groups = np.asarray(labels.get(GROUP_KEY, np.full(len(gold), -1))).astype(int).reshape(-1)
        scores = {}
        for g in sorted({int(g) for g in groups if g >= 0}):
            idx = np.flatnonzero(groups == g)
            m = ner_metrics([true_tags[i] for i in idx], [pred_tags[i] for i in idx])
            scores[g] = {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"], "count": len(idx)}
        flat, per_group = group_metric_table(scores, context.group_names, ("f1", "recall"), context.gap_groups)
        out.update(flat)
        if context.nested:
            out["per_group"] = per_group
            out["per_type"] = per_type
        return out


def aligned_word_log_probs(logp: torch.Tensor, words: torch.Tensor, pairs: torch.Tensor):
    """Gather `[P, W, C]` log-distributions at the tokens of each (original, counterfactual) pair sharing a word.

    `words[b, t]` is the aligned source-word index of token t of row b (-1: not compared). Returns `(a, b, mask)`.
    """
    num_pairs = pairs.shape[0]
    num_classes = logp.shape[-1]
    width = int(words.max().item()) + 1 if words.numel() else 0
    if num_pairs == 0 or width <= 0:
        empty = logp.new_zeros((num_pairs, 1, num_classes))
        return empty, empty, torch.zeros((num_pairs, 1), dtype=torch.bool, device=logp.device)
    rows, cols = (words >= 0).nonzero(as_tuple=True)
    # position of each (row, word) in the row: -1 if absent
    pos = torch.full((words.shape[0], width), -1, dtype=torch.long, device=logp.device)
    pos[rows, words[rows, cols]] = cols
    pa, pb = pos[pairs[:, 0]], pos[pairs[:, 1]]  # [P, W]
    mask = (pa >= 0) & (pb >= 0)
    ia, ib = pa.clamp(min=0), pb.clamp(min=0)
    a = logp[pairs[:, 0]].gather(1, ia.unsqueeze(-1).expand(-1, -1, num_classes))
    b = logp[pairs[:, 1]].gather(1, ib.unsqueeze(-1).expand(-1, -1, num_classes))
    return a, b, mask
