"""Extractive QA adapter: SQuAD v1/v2 features over doc_stride windows, n-best post-processing, EM/F1, span CLP.

Rows are SQuAD-style (`id`, `question`, `context`, `answers` = {"text": [...], "answer_start": [...]}). Long
contexts become several features (windows of `max_length` tokens overlapping by `doc_stride`); an answer outside a
window is labelled at the CLS index, as in transformers' `run_qa.py`. Every feature copies its example's `group`,
`pair_id`, `is_cf` (and `sample_weight`), so the windows of an example and of its counterfactual share a pair id.

Evaluation: the features of an evaluation split keep their example index and offsets; `eval_references` splits
them off into `QaReferences` (the examples and each feature's offsets, indexed by the `feature_id` that travels as
a label), which the trainer passes back to `evaluate` explicitly (as transformers' `run_qa.py` passes its
evaluation examples). `evaluate` maps the gathered start/end logits back to text answers (n-best search as
`utils_qa.postprocess_qa_predictions`) and scores them with the official SQuAD EM/F1. The adapter holds no state.

Per-feature task loss: (start CE + end CE) / 2, one item per feature.

CLP (`clp_word` column): every context token carries the character start, in the pair's ORIGINAL context, of the
whitespace word it belongs to (mapped back through `cf_edits` on counterfactual rows; -1 when a word has no
source). For each example pair the start (and end) distribution over context words is: per window, the softmax over
its context tokens summed over each word's tokens; averaged over the windows the word appears in; renormalised over
the words both sides share. CLP is the symmetric KL between the two sides' distributions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoModelForQuestionAnswering

from fairtune.columns import FAIRTUNE_KEYS, GROUP_KEY, IS_CF_KEY, PAIR_KEY, WEIGHT_KEY
from fairtune.data.squad import answer_lists, flatten_squad
from fairtune.metrics.squad import squad_scores
from fairtune.tasks.base import (
    CLP_WORD_KEY,
    EvalContext,
    TaskAdapter,
    TaskOutputs,
    TokenExtrasCollator,
    group_metric_table,
)

__all__ = ["QaAdapter", "QaReferences", "answer_lists", "flatten_squad", "squad_to_jsonl"]

FEATURE_ID_KEY = "feature_id"
QA_COLUMNS = ("question", "context", "answers")
_WORD = re.compile(r"\S+")
_NEG = -1e4  # log-probability of words outside a pair's shared support (exp() == 0, finite in the KL)


def squad_to_jsonl(src: str | Path, dst: str | Path, limit: int | None = None) -> Path:
    """Write SQuAD nested JSON as flat jsonl rows that `train_file`/`validation_file` can load."""
    rows = flatten_squad(json.loads(Path(src).read_text(encoding="utf-8")))
    rows = rows[:limit] if limit else rows
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return dst


def inverse_offset(edits: Sequence[Sequence[int]], pos: int) -> int:
    """The source offset of target offset `pos` through `[src_start, src_end, tgt_start, tgt_end]` edits (sorted);
    the start of an edit maps to the start of its source span, any other position inside one to -1."""
    shift = 0
    for ss, se, ts, te in edits:
        if pos < ts:
            break
        if pos >= te:
            shift = se - te
            continue
        return ss if pos == ts else -1
    return pos + shift


def word_coordinates(context: str, edits: Sequence[Sequence[int]] | None) -> tuple[np.ndarray, list[int]]:
    """Per character the index of its whitespace word (-1 on spaces), and per word its start in the source text."""
    char_word = np.full(len(context) + 1, -1, dtype=np.int64)
    starts = []
    for i, m in enumerate(_WORD.finditer(context)):
        char_word[m.start() : m.end()] = i
        starts.append(m.start())
    ctx_edits = sorted((e[1], e[2], e[3], e[4]) for e in (edits or []) if int(e[0]) == 0)
    if ctx_edits:
        starts = [inverse_offset(ctx_edits, s) for s in starts]
    return char_word, starts


@dataclass
class QaReferences:
    """What scoring an evaluation split needs besides the logits.

    Args:
        examples: per example: `id`, `context` and the gold answer texts.
        features: per feature (indexed by `feature_id`): (example index, offsets `[T, 2]`; -1 outside the context).
        version_2_with_negative: whether some example has no answer (SQuAD v2: predict no answer when it wins).
    """

    examples: list[dict[str, Any]]
    features: list[tuple[int, np.ndarray]]
    version_2_with_negative: bool = False


class QaAdapter(TaskAdapter):
    """Extractive QA; objectives on per-feature losses, CLS-pooled vectors and word-level span distributions.

    Args:
        n_best_size: start and end candidates searched per feature.
        max_answer_length: longest answer, in tokens.
        null_score_diff_threshold: SQuAD v2: predict no answer when null score - best score exceeds it.
        version_2_with_negative: allow no-answer predictions (default: on when any example has no answer).
    """

    name = "qa"
    label_names = ("start_positions", "end_positions", FEATURE_ID_KEY)
    has_class_labels = False
    extra_columns = (CLP_WORD_KEY,)

    def __init__(
        self,
        n_best_size: int = 20,
        max_answer_length: int = 30,
        null_score_diff_threshold: float = 0.0,
        version_2_with_negative: bool | None = None,
    ) -> None:
        """Post-processing settings (`version_2_with_negative=None`: decided per split from its examples)."""
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length
        self.null_score_diff_threshold = null_score_diff_threshold
        self.version_2_with_negative = version_2_with_negative

    def model_class(self):
        return AutoModelForQuestionAnswering

    # ---- preprocessing ---------------------------------------------------------------------------------------
    def preprocess(self, dataset, tokenizer, data_args, split: str):
        """Tokenize into doc_stride windows with start/end labels, `feature_id` and `clp_word`; evaluation splits
        also keep `example_index` and `offsets` for `eval_references`."""
        cols = dataset.column_names
        missing = [c for c in QA_COLUMNS if c not in cols]
        if missing:
            hint = (
                " Nested SQuAD JSON (data/paragraphs/qas) must be flattened first: fairtune.tasks.qa.squad_to_jsonl."
            )
            raise ValueError(
                f"task qa: column(s) {missing} not in the {split} data (columns: {cols}); QA rows are SQuAD-style "
                f"(id, question, context, answers).{hint if 'data' in cols else ''}"
            )
        pad_on_right = tokenizer.padding_side == "right"
        ctx_seq = 1 if pad_on_right else 0
        register = split != "train"  # evaluation splits keep what scoring needs
        has_edits = "cf_edits" in cols
        carry = [c for c in (*FAIRTUNE_KEYS, WEIGHT_KEY) if c in cols]
        cls_id = tokenizer.cls_token_id

        stride = data_args.window_stride
        max_question = data_args.max_length - stride - 4
        if max_question < 1:
            raise ValueError(
                f"`doc_stride`: {stride} leaves no room for the question in `max_length` "
                f"{data_args.max_length}; use a doc_stride of at most a third of max_length."
            )

        def features(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            questions = [str(q).lstrip() for q in batch["question"]]
            contexts = [str(c) for c in batch["context"]]
            # a question too long for a window with `doc_stride` overlap is cut (the tokenizer would refuse)
            q_offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            for i, offs in enumerate(q_offsets):
                if len(offs) > max_question:
                    questions[i] = questions[i][: offs[max_question - 1][1]]
            enc = tokenizer(
                questions if pad_on_right else contexts,
                contexts if pad_on_right else questions,
                truncation="only_second" if pad_on_right else "only_first",
                max_length=data_args.max_length,
                stride=stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
                padding=False,
            )
            sample_map = enc.pop("overflow_to_sample_mapping")
            all_offsets = enc.pop("offset_mapping")
            out: dict[str, list] = {k: list(v) for k, v in enc.items()}
            for key in ("start_positions", "end_positions", "example_index", "offsets", CLP_WORD_KEY, *carry):
                out[key] = []
            coords: dict[int, tuple[np.ndarray, list[int]]] = {}
            for i, offsets in enumerate(all_offsets):
                s = sample_map[i]
                ids = enc["input_ids"][i]
                seq_ids = enc.sequence_ids(i)
                cls_index = ids.index(cls_id) if cls_id is not None and cls_id in ids else 0
                ctx = [t for t, q in enumerate(seq_ids) if q == ctx_seq]
                start = end = cls_index
                texts, starts = answer_lists(batch["answers"][s])
                if texts and ctx:
                    start_char, end_char = starts[0], starts[0] + len(texts[0])
                    first, last = ctx[0], ctx[-1]
                    if offsets[first][0] <= start_char and offsets[last][1] >= end_char:
                        ts = first
                        while ts <= last and offsets[ts][0] <= start_char:
                            ts += 1
                        te = last
                        while te >= first and offsets[te][1] >= end_char:
                            te -= 1
                        start, end = ts - 1, te + 1
                if s not in coords:
                    coords[s] = word_coordinates(contexts[s], batch["cf_edits"][s] if has_edits else None)
                char_word, word_src = coords[s]
                context = contexts[s]
                row_clp = [-1] * len(ids)
                row_offsets = np.full((len(ids), 2), -1, dtype=np.int32)
                for t in ctx:
                    a, b = offsets[t]
                    while a < b and context[a].isspace():
                        a += 1
                    if a >= b:
                        continue
                    row_offsets[t] = offsets[t]
                    w = char_word[a]
                    row_clp[t] = word_src[w] if w >= 0 else -1
                out["start_positions"].append(start)
                out["end_positions"].append(end)
                out["example_index"].append(indices[s])
                out["offsets"].append(row_offsets.tolist() if register else [])
                out[CLP_WORD_KEY].append(row_clp)
                for key in carry:
                    out[key].append(batch[key][s])
            return out

        feats = dataset.map(
            features,
            batched=True,
            with_indices=True,
            remove_columns=cols,
            num_proc=data_args.preprocessing_num_workers,
            desc=f"QA features ({split})",
        )
        if not register:
            feats = feats.remove_columns(["example_index", "offsets"])
        return feats.add_column(FEATURE_ID_KEY, list(range(len(feats))) if register else [-1] * len(feats))

    def eval_references(self, dataset, features) -> tuple[Any, QaReferences | None]:
        """(features for the model, `QaReferences`) of an evaluation split preprocessed by `preprocess`."""
        if "offsets" not in features.column_names:
            return features, None
        cols = dataset.column_names
        examples = [
            {"id": str(row.get("id", i)), "context": row["context"], "answers": answer_lists(row["answers"])[0]}
            for i, row in enumerate(dataset.select_columns([c for c in ("id", "context", "answers") if c in cols]))
        ]
        offsets = [
            (int(ex), np.asarray(offs, dtype=np.int32).reshape(-1, 2))
            for ex, offs in zip(features["example_index"], features["offsets"])
        ]
        v2 = self.version_2_with_negative
        if v2 is None:
            v2 = any(not ex["answers"] for ex in examples)
        return features.remove_columns(["example_index", "offsets"]), QaReferences(examples, offsets, bool(v2))

    def collator(self, tokenizer):
        """Right padding (feature positions stay those of the registered offsets) plus the padded `clp_word`."""

        def pad(features: list[dict[str, Any]]) -> dict[str, Any]:
            return tokenizer.pad(features, padding=True, padding_side="right", return_tensors="pt")

        return TokenExtrasCollator(pad, {CLP_WORD_KEY: -1}, padding_side="right")

    # ---- training-time hooks ---------------------------------------------------------------------------------
    def outputs(self, model_outputs, labels: dict[str, torch.Tensor], representation, extras=None) -> TaskOutputs:
        """Per-feature (start CE + end CE) / 2, one item per labelled feature."""
        start_logits, end_logits = model_outputs["start_logits"], model_outputs["end_logits"]
        sp, ep = labels.get("start_positions"), labels.get("end_positions")
        if sp is None or ep is None:
            losses = start_logits.new_zeros(start_logits.shape[0], dtype=torch.float32)
            counts = torch.zeros_like(losses)
        else:
            length = start_logits.shape[1]
            sp, ep = sp.reshape(-1).clamp(0, length), ep.reshape(-1).clamp(0, length)
            ls = F.cross_entropy(start_logits.float(), sp, ignore_index=length, reduction="none")
            le = F.cross_entropy(end_logits.float(), ep, ignore_index=length, reduction="none")
            losses = (ls + le) / 2
            counts = torch.ones_like(losses)
        return TaskOutputs(
            losses=losses,
            item_counts=counts,
            representation=representation,
            predictions={"start_logits": start_logits, "end_logits": end_logits},
        )

    def count_items(self, batch: dict[str, Any]) -> torch.Tensor:
        """Loss items in a batch: labelled features."""
        sp = batch.get("start_positions")
        return torch.tensor(sp.numel()) if sp is not None else torch.tensor(0)

    def pair_log_probs(self, model_outputs, batch: dict[str, Any], pairs: torch.Tensor):
        """Word-level start and end log-distributions `[P, 2, W]` per example pair (first pair row; rest masked)."""
        words = batch.get(CLP_WORD_KEY)
        if words is None:
            raise ValueError("clp_weight on QA needs the `clp_word` column; preprocess with QaAdapter.preprocess.")
        logits = torch.stack([model_outputs["start_logits"], model_outputs["end_logits"]], 1).float()  # [B, 2, T]
        return span_pair_log_probs(logits, words.to(logits.device), batch[PAIR_KEY], batch[IS_CF_KEY], pairs)

    # ---- post-processing and evaluation ----------------------------------------------------------------------
    def postprocess(self, start_logits, end_logits, feature_ids, references: QaReferences) -> dict[int, str]:
        """Text answers per example of `references` (n-best search over its features, as `utils_qa.py`)."""
        start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
        features, examples = references.features, references.examples
        by_example: dict[int, list[int]] = {}
        for row, fid in enumerate(np.asarray(feature_ids).reshape(-1).astype(int)):
            if 0 <= fid < len(features):
                by_example.setdefault(features[fid][0], []).append(row)
        answers: dict[int, str] = {}
        k = self.n_best_size
        fids = np.asarray(feature_ids).reshape(-1).astype(int)
        for ex, rows in by_example.items():
            context = examples[ex]["context"]
            best, best_score, null_score = "", -np.inf, np.inf
            for row in rows:
                offsets = features[fids[row]][1]
                n = min(len(offsets), start_logits.shape[1])
                sl, el = start_logits[row, :n], end_logits[row, :n]
                null_score = min(null_score, float(sl[0] + el[0]))
                s_idx = np.argsort(sl)[-1 : -k - 1 : -1]
                e_idx = np.argsort(el)[-1 : -k - 1 : -1]
                s, e = np.meshgrid(s_idx, e_idx, indexing="ij")
                valid = (offsets[s, 0] >= 0) & (offsets[e, 0] >= 0) & (e >= s) & (e - s + 1 <= self.max_answer_length)
                if not valid.any():
                    continue
                scores = np.where(valid, sl[s] + el[e], -np.inf)
                i, j = np.unravel_index(int(scores.argmax()), scores.shape)
                if scores[i, j] > best_score:
                    best_score = float(scores[i, j])
                    best = context[int(offsets[s[i, j], 0]) : int(offsets[e[i, j], 1])]
            if references.version_2_with_negative and null_score > best_score + self.null_score_diff_threshold:
                best = ""
            answers[ex] = best
        return answers

    def evaluate(
        self, predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray], context: EvalContext
    ) -> dict[str, Any]:
        """SQuAD exact match and F1 (percentages), per-group EM/F1 and their gaps."""
        refs = context.references
        if refs is None:
            raise ValueError(
                "QA evaluation needs the split's references (examples and offsets): preprocess it with "
                "QaAdapter.preprocess, then pass `adapter.eval_references(raw, features)[1]` as `references` (or "
                "`eval_references` to the FairTrainer)."
            )
        fids = np.asarray(labels.get(FEATURE_ID_KEY, [])).reshape(-1).astype(int)
        answers = self.postprocess(predictions["start_logits"], predictions["end_logits"], fids, refs)
        if not answers:
            return {}
        groups = np.asarray(labels.get(GROUP_KEY, np.full(len(fids), -1))).reshape(-1).astype(int)
        example_group: dict[int, int] = {}
        for row, fid in enumerate(fids):
            if 0 <= fid < len(refs.features):
                example_group.setdefault(refs.features[fid][0], int(groups[row]))
        scores = {ex: squad_scores(text, refs.examples[ex]["answers"]) for ex, text in answers.items()}
        em = np.array([s[0] for s in scores.values()])
        f1 = np.array([s[1] for s in scores.values()])
        out: dict[str, Any] = {"exact_match": 100.0 * float(em.mean()), "f1": 100.0 * float(f1.mean())}
        per: dict[int, dict[str, float]] = {}
        for g in sorted({g for g in example_group.values() if g >= 0}):
            sel = [s for ex, s in scores.items() if example_group.get(ex) == g]
            per[g] = {
                "exact_match": 100.0 * float(np.mean([s[0] for s in sel])),
                "f1": 100.0 * float(np.mean([s[1] for s in sel])),
                "count": len(sel),
            }
        flat, per_group = group_metric_table(per, context.group_names, ("exact_match", "f1"), context.gap_groups)
        out.update(flat)
        if context.nested:
            out["per_group"] = per_group
            out["predictions"] = {refs.examples[ex]["id"]: text for ex, text in answers.items()}
        return out


def span_pair_log_probs(
    logits: torch.Tensor, words: torch.Tensor, pair_id: torch.Tensor, is_cf: torch.Tensor, pairs: torch.Tensor
):
    """Aligned word-level log-distributions of example pairs for CLP.

    Args:
        logits: `[B, 2, T]` start and end logits of every feature in the batch.
        words: `[B, T]` source-word coordinate of each context token (-1: not compared).
        pair_id, is_cf: `[B]` pair id and counterfactual flag of each feature.
        pairs: `[P, 2]` (original row, counterfactual row) pairs from `find_pairs`.

    Returns `(a, b, mask)` with `a`, `b` of shape `[P, 2, W]` and `mask` `[P, 2]`: the first pair row of each
    example pair holds the pair's distributions, the others are masked out, so the summed CLP counts each
    example pair once.
    """
    device = logits.device
    num_pairs = pairs.shape[0]
    pair_id, is_cf = pair_id.to(device).long(), is_cf.to(device).long()
    if num_pairs == 0:
        z = logits.new_zeros((0, 2, 1))
        return z, z, torch.zeros((0, 2), dtype=torch.bool, device=device)
    pair_keys = pair_id[pairs[:, 1]]
    uniq_pairs, pair_row_k = torch.unique(pair_keys, return_inverse=True)
    row_k = torch.searchsorted(uniq_pairs, pair_id.clamp(min=0))
    row_in = (pair_id >= 0) & (row_k < len(uniq_pairs))
    row_in &= uniq_pairs[row_k.clamp(max=len(uniq_pairs) - 1)] == pair_id
    valid = (words >= 0) & row_in[:, None]
    # per feature: softmax over its compared context tokens, for start and end
    probs = logits.masked_fill(~valid[:, None, :], -1e9).softmax(-1) * valid[:, None, :]
    r, t = valid.nonzero(as_tuple=True)
    coord = words[r, t]
    width = int(coord.max().item()) + 1 if coord.numel() else 1
    # 1) sum over a word's tokens within a feature
    rw_key = r * width + coord
    rw, rw_inv = torch.unique(rw_key, return_inverse=True)
    rw_prob = logits.new_zeros((len(rw), 2)).index_add(0, rw_inv, probs[r, :, t])
    rw_r, rw_c = rw // width, rw % width
    # 2) mean over the features (windows) of one example side that contain the word
    esw_key = (row_k[rw_r] * 2 + is_cf[rw_r].clamp(0, 1)) * width + rw_c
    esw, esw_inv = torch.unique(esw_key, return_inverse=True)
    esw_sum = logits.new_zeros((len(esw), 2)).index_add(0, esw_inv, rw_prob)
    esw_cnt = logits.new_zeros(len(esw)).index_add(0, esw_inv, torch.ones_like(rw_prob[:, 0]))
    esw_mean = esw_sum / esw_cnt.clamp(min=1)[:, None]
    esw_k, esw_s, esw_c = esw // (2 * width), (esw // width) % 2, esw % width
    # 3) words both sides of a pair share; renormalise each side over them
    pw, pw_inv = torch.unique(esw_k * width + esw_c, return_inverse=True)
    side = logits.new_zeros((2, len(pw), 2))
    present = torch.zeros((2, len(pw)), dtype=torch.bool, device=device)
    side[esw_s, pw_inv] = esw_mean
    present[esw_s, pw_inv] = True
    support = present[0] & present[1]
    pw_k = pw // width
    num_k = len(uniq_pairs)
    side = side * support[None, :, None]
    norm = logits.new_zeros((2, num_k, 2)).index_add(1, pw_k, side)
    dist = side / norm[:, pw_k].clamp(min=1e-12)
    logd = torch.where(support[None, :, None], dist.clamp(min=1e-12).log(), torch.full_like(dist, _NEG))
    # 4) dense [K, W'] layout: position of each pair-word within its pair
    first = torch.full((num_k,), len(pw), dtype=torch.long, device=device).scatter_reduce(
        0, pw_k, torch.arange(len(pw), device=device), reduce="amin"
    )
    pos = torch.arange(len(pw), device=device) - first[pw_k]
    cols = int(pos.max().item()) + 1 if len(pw) else 1
    dense = torch.full((2, num_k, 2, cols), _NEG, dtype=logits.dtype, device=device)
    dense[:, pw_k, :, pos] = logd.permute(1, 0, 2)
    has_support = torch.zeros(num_k, dtype=torch.bool, device=device).index_fill(0, pw_k[support], True)
    a, b = dense[0][pair_row_k], dense[1][pair_row_k]
    first_row = torch.zeros(num_pairs, dtype=torch.bool, device=device)
    seen = torch.full((num_k,), num_pairs, dtype=torch.long, device=device).scatter_reduce(
        0, pair_row_k, torch.arange(num_pairs, device=device), reduce="amin"
    )
    first_row[seen] = True
    mask = (first_row & has_support[pair_row_k])[:, None].expand(num_pairs, 2)
    return a, b, mask
