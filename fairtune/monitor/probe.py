"""Counterfactual probe of the deployed model: swap protected terms in a seeded sample of logged texts, score both.

Per window, up to `probe_size` logged texts that the augmenter changes are scored with the model from
`--model-dir` together with their counterfactual twins (`CounterfactualAugmenter`, one axis at a time, as the
`counterfactual` evaluation suite does). The flip rate (predicted class changes) and the mean score gap
(`ctf_gap`: change of the probability of the class predicted on the original) need neither labels nor groups.
Sampling is seeded by the row's file and position, so a rerun picks the same texts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from fairtune.metrics.counterfactual import ctf_gap, flip_rate
from fairtune.monitor.config import MonitorError

OVERSAMPLE = 8  # texts drawn per wanted pair: many texts mention no protected term


@dataclass
class ProbeModel:
    """A sequence classifier and its tokenizer, for scoring texts."""

    model: Any
    tokenizer: Any
    batch_size: int = 32

    @classmethod
    def load(cls, model_dir: str | Path) -> ProbeModel:
        """AutoModelForSequenceClassification + AutoTokenizer from a local model dir (evaluation mode)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise MonitorError(
                f"--model-dir {model_dir}: no config.json; pass the output dir of `fairtune train` (a saved "
                "transformers sequence classifier), or leave --model-dir out to skip the probe."
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSequenceClassification.from_pretrained(path)
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0]
            raise MonitorError(f"--model-dir {model_dir}: cannot load the classifier ({first}).") from err
        model.eval()
        return cls(model, tokenizer)

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (n, num_labels)."""
        from fairtune.evaluation.predict import classifier_probs

        return classifier_probs(self.model, self.tokenizer, list(texts), batch_size=self.batch_size)


def sample_texts(con: Any, rows_sql: str, wanted: dict[int, int], seed: int) -> dict[int, list[str]]:
    """A seeded sample of logged texts per window key (`OVERSAMPLE` x the wanted pairs), in one query."""
    if not wanted:
        return {}
    keys = ", ".join(str(int(k)) for k in wanted)
    most = OVERSAMPLE * max(wanted.values())
    df = con.execute(
        f"SELECT _win AS win, _text AS text FROM ({rows_sql}) AS q "
        f"WHERE _text IS NOT NULL AND _win IN ({keys}) "
        f"QUALIFY row_number() OVER (PARTITION BY _win ORDER BY hash(_file, _pos, {int(seed)})) <= {most}"
    ).fetch_df()
    out: dict[int, list[str]] = {}
    for win, texts in df.groupby("win")["text"]:
        out[int(win)] = texts.tolist()[: OVERSAMPLE * wanted[int(win)]]
    return out


def probe_pairs(texts: Sequence[str], axes: Sequence[str], seed: int, limit: int) -> tuple[list[str], list[str]]:
    """Up to `limit` (original, counterfactual) pairs from the texts the augmenter changes."""
    from fairtune.evaluation.suites.counterfactual import make_pairs

    orig, cf, _ = make_pairs(list(texts), list(axes), seed)
    return orig[:limit], cf[:limit]


def probe_window(model: ProbeModel, texts: Sequence[str], axes: Sequence[str], seed: int, limit: int) -> dict:
    """Additive probe sums of one window: pairs, flips, and the sum and sum of squares of the score gaps."""
    orig, cf = probe_pairs(texts, axes, seed, limit)
    if not orig:
        return {"n_pairs": 0, "n_flips": 0, "gap_sum": 0.0, "gap_sq": 0.0}
    a, b = model.probs(orig), model.probs(cf)
    flips = [flip_rate(a[i : i + 1], b[i : i + 1]) for i in range(len(a))]
    gaps = np.array([ctf_gap(a[i : i + 1], b[i : i + 1]) for i in range(len(a))])
    return {
        "n_pairs": len(orig),
        "n_flips": int(round(sum(flips))),
        "gap_sum": float(gaps.sum()),
        "gap_sq": float(np.square(gaps).sum()),
    }


def probe_summary(row: pd.Series | dict | None, confidence: float = 0.95) -> dict[str, Any]:
    """flip_rate (Wilson interval) and ctf_gap (normal interval) from a window's probe sums."""
    if row is None or int(row["n_pairs"]) == 0:
        return {}
    n, k = int(row["n_pairs"]), int(row["n_flips"])
    z = float(norm.ppf(0.5 + confidence / 2.0))
    rate = k / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    gap = float(row["gap_sum"]) / n
    var = max(float(row["gap_sq"]) / n - gap * gap, 0.0) * (n / (n - 1) if n > 1 else 0.0)
    se = math.sqrt(var / n) if n > 1 else math.nan
    out = {
        "n_pairs": n,
        "flip_rate": rate,
        "ctf_gap": gap,
        "intervals": {"flip_rate": [max(0.0, centre - half), min(1.0, centre + half)]},
    }
    if math.isfinite(se):
        out["intervals"]["ctf_gap"] = [gap - z * se, gap + z * se]
    return out
