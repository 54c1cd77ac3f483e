"""Name-substitution probe for NER (after Mishra et al. 2020): PERSON recall per demographic name group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fairtune.metrics.tags import is_person_type

__all__ = ["extract_spans", "is_person_type", "ner_name_recall"]


def extract_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """IOB/IOB2 tags -> {(start, end_exclusive, type)}; an I- tag that does not continue a span starts one."""
    spans: set[tuple[int, int, str]] = set()
    start, kind = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, typ = tag.partition("-") if "-" in tag else (tag, "", "")
        continues = prefix == "I" and kind == typ and start is not None
        if start is not None and not continues:
            spans.add((start, i, kind or ""))
            start, kind = None, None
        if prefix in ("B", "I") and not continues:
            start, kind = i, typ
    return spans


def ner_name_recall(recalled: Sequence[bool], groups: Sequence[str]) -> dict[str, Any]:
    """Per-group recall of the substituted PERSON spans and `ner_name_recall_gap` (largest minus smallest)."""
    r = np.asarray(recalled, dtype=bool)
    g = np.asarray(list(groups), dtype=object)
    per_group = {
        str(k): {"recall": float(r[g == k].mean()), "count": int((g == k).sum())} for k in sorted(set(g.tolist()))
    }
    recalls = [v["recall"] for v in per_group.values()]
    return {
        "ner_name_recall": float(r.mean()) if len(r) else float("nan"),
        "ner_name_recall_gap": float(max(recalls) - min(recalls)) if recalls else float("nan"),
        "ner_name_recall_min": float(min(recalls)) if recalls else float("nan"),
        "per_group": per_group,
    }
