"""`FairnessCallback`: watch fairness metrics at every evaluation and stop training when a constraint keeps failing.

It reads the `metrics` dict the Trainer passes to `on_evaluate` (FairTrainer's evaluation reports the group
metrics, e.g. `eval_equalized_odds_difference`; with a plain Trainer, `compute_metrics` can return them), keeps
the history of the fairness metrics the monitor tracks, and sets `control.should_training_stop` once the
constraints (the `sweep --select` / `monitor --alert` syntax) are violated at `patience` consecutive evaluations.
Its counter is saved in checkpoints (`ExportableState`), so a resumed run keeps counting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from fairtune.metrics.group import HEADLINE_METRICS
from fairtune.selection import parse_constraints

logger = logging.getLogger(__name__)

#: the fairness metrics the monitor reports per window, tracked at each evaluation when present
TRACKED_METRICS = (*HEADLINE_METRICS, "bias_coefficient_gap", "flip_rate", "ctf_gap")


class FairnessCallback(TrainerCallback, ExportableState):
    """Track fairness metrics per evaluation; stop after `patience` consecutive evaluations violating `constraints`.

    Args:
        constraints: e.g. `"equalized_odds_difference<=0.1"` or a list of such strings (all must hold).
        patience: consecutive violating evaluations that stop training (>= 1).
        metrics: metric names to record in `history` (default: `TRACKED_METRICS`).
        prefix: the prefix of evaluation metrics in the Trainer's dict (`eval_`).
    """

    def __init__(
        self,
        constraints: str | Sequence[str] = (),
        patience: int = 1,
        metrics: Sequence[str] | None = None,
        prefix: str = "eval_",
    ) -> None:
        """Parse the constraints early, so a typo fails before training starts."""
        if patience < 1:
            raise ValueError(f"FairnessCallback: patience must be >= 1, got {patience}.")
        texts = [constraints] if isinstance(constraints, str) else list(constraints)
        self.constraint_texts = texts
        self.constraints = [c for text in texts for c in parse_constraints(text)]
        self.patience = int(patience)
        self.metrics = tuple(metrics) if metrics is not None else TRACKED_METRICS
        self.prefix = prefix
        self.violations = 0
        self.history: list[dict[str, Any]] = []
        self.stopped_at: int | None = None
        self._warned: set[str] = set()

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs):
        """Record this evaluation's fairness metrics and count a violation; stop training after `patience`."""
        values = {
            (k[len(self.prefix) :] if k.startswith(self.prefix) else k): v
            for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        for c in self.constraints:
            if c.metric not in values and c.metric not in self._warned:
                self._warned.add(c.metric)
                logger.warning(
                    "FairnessCallback: the evaluation reports no %s%s (it has: %s); the constraint %s is not checked.",
                    self.prefix,
                    c.metric,
                    ", ".join(sorted(values)),
                    c,
                )
        violated = [str(c) for c in self.constraints if c.metric in values and not c.satisfied(values)]
        self.violations = self.violations + 1 if violated else 0
        entry = {"step": state.global_step, "epoch": state.epoch}
        entry.update({m: float(values[m]) for m in self.metrics if m in values})
        entry["violated"] = violated
        self.history.append(entry)
        if violated and self.violations >= self.patience:
            control.should_training_stop = True
            self.stopped_at = state.global_step
            logger.warning(
                "FairnessCallback: %s violated at %d consecutive evaluations; stopping at step %d.",
                " and ".join(violated),
                self.violations,
                state.global_step,
            )
        return control

    def state(self) -> dict:
        """What a checkpoint keeps: the arguments and the violation counter (ExportableState)."""
        return {
            "args": {
                "constraints": self.constraint_texts,
                "patience": self.patience,
                "metrics": list(self.metrics),
                "prefix": self.prefix,
            },
            "attributes": {"violations": self.violations, "stopped_at": self.stopped_at},
        }
