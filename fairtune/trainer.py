"""FairTrainer: a transformers Trainer whose loss is the task loss plus the registered fairness objectives.

compute_loss runs one forward of the `FairModel` over the batch (originals and counterfactuals together); the task
adapter turns the outputs into per-example losses, probabilities and a pooled representation; each objective
(`fairtune.objectives`) turns its view of those into a term and the numbers it logs. The task loss and the local
objectives (CLP, the adversary) are sums over items normalised by the global count of the accumulation window, so
they equal one big batch whatever the number of processes or accumulation steps. Gathered objectives (DP, EO,
MinDiff, DRO, loss parity) are computed per micro-batch over all processes (gathered with gradients) and averaged
over accumulation steps: they are not sums over examples.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer

from fairtune.balance import cell_balance_weights, row_balance_weights
from fairtune.columns import FAIRTUNE_KEYS, GROUP_KEY, IS_CF_KEY, PAIR_KEY, WEIGHT_KEY
from fairtune.config import FairTrainingArguments
from fairtune.distributed import all_sum, even_batches_real_rows, gather_with_grad, padding_keep_mask
from fairtune.modeling import FairModel, FairOutput, is_decoder_model
from fairtune.objectives import FairBatch, Objective, Ratio, resolve_objectives, zero_like_graph
from fairtune.objectives.adversarial import adversary_loss, ganin_schedule, leakage_probe
from fairtune.objectives.counterfactual import find_pairs
from fairtune.selection import selection_metrics
from fairtune.tasks.base import EvalContext, TaskAdapter

logger = logging.getLogger(__name__)

ADVERSARY_FILE = "fairtune_adversary.safetensors"
STATE_FILE = "fairtune_state.json"
CONFIG_FILE = "fairtune_config.json"
ADVERSARY_OPTIMIZER_FILE = "fairtune_adversary_optimizer.pt"
KEEP_KEY = "fairtune_keep"  # rows to count; False on rows accelerate repeated to even out the last batch
POOLED_KEY = "pooled"  # the pooled representation among the evaluation predictions
_DROP_KEYS = (*FAIRTUNE_KEYS, WEIGHT_KEY, KEEP_KEY)


class NonFiniteLossError(ValueError):
    """Raised when a training loss term is NaN or infinite: the run stops before a broken model is saved."""


class FairTrainer(Trainer):
    """Trainer with registered fairness objectives and an adversary, each switchable from the arguments.

    Args:
        model: a transformers (or PEFT) model for the adapter's task. It is wrapped in a `FairModel` (reachable as
            `trainer.model`) and never modified: after training it is the same plain model.
        args: `FairTrainingArguments`.
        task_adapter: the task's adapter (default: sequence classification).
        group_names: names of the groups behind the `group` ids (their number sizes the objectives).
        label_list: names of the classes (classification), for reports.
        eval_references: what the adapter needs besides the predictions to score `eval_dataset` (QA: the examples
            and the features' offsets, from `adapter.eval_references`); `evaluate`/`predict` take their own.
        fairtune_config: the resolved run configuration written next to the model.
        Other keyword arguments go to `transformers.Trainer`.
    """

    # compute_loss normalises by the global item count of the accumulation window itself.
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        model=None,
        args: FairTrainingArguments | None = None,
        *,
        task_adapter: TaskAdapter | None = None,
        group_names: list[str] | None = None,
        label_list: list[str] | None = None,
        eval_references: Any = None,
        fairtune_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        from fairtune.tasks.classification import ClassificationAdapter

        if args is None:
            args = FairTrainingArguments(output_dir="outputs/fairtune")
        if not isinstance(args, FairTrainingArguments):
            raise TypeError("`args` must be a FairTrainingArguments (it carries the objective weights).")
        if model is None:
            raise ValueError("FairTrainer needs `model` (a transformers or PEFT task model).")
        self.adapter = task_adapter or ClassificationAdapter()
        self.group_names = [str(g) for g in (group_names or [])]
        self.num_groups = len(self.group_names)
        self.label_list = list(label_list or [])
        self.fairtune_config = fairtune_config
        self.eval_references = eval_references
        specs = resolve_objectives(args)
        self.objective_weights = {name: w for name, (w, _) in specs.items()}
        self._check_objectives(args, specs)
        self._check_hub_strategy(args)
        self.objectives = self._build_objectives(args, model, specs)
        #: the FairBatch fields the active objectives read (with their options)
        self._batch_needs = {
            f for name, (_, opts) in specs.items() for f in type(self.objectives[name]).needs_for(opts)
        }
        adversary = self.objectives.get("adversary")
        self.adversary = adversary.module if adversary is not None else None
        pool = partial(self.adapter.pool, is_decoder=is_decoder_model(model))
        fair_model = FairModel(model, pool, adversary=self.adversary, adversary_input=args.adversary_input)
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._few_group_batches = 0
        self._group_batches = [0, 0]  # training micro-batches seen by group objectives, and those with 2+ groups
        self._in_checkpoint = False
        self._window_counts: dict[str, torch.Tensor] | None = None  # fairtune's item counts of the current window
        self._active_references = eval_references
        self._adversary_optimizer: torch.optim.Optimizer | None = None
        self._adversary_cells: torch.Tensor | None = None  # adversary_balance: [labels, groups] weights
        #: when True, evaluation metrics also carry the nested `per_group` table (for reports, not for logging)
        self.nested_report = False
        if kwargs.get("compute_metrics") is None:
            kwargs["compute_metrics"] = self._compute_fair_metrics
        super().__init__(model=fair_model, args=args, **kwargs)
        self.model_accepts_loss_kwargs = False
        if args.label_names is None:  # the trainer's own list; the caller's arguments stay as given
            self.label_names = [*self.adapter.label_names, *FAIRTUNE_KEYS]

    # ---- set-up ----------------------------------------------------------------------------------------------
    def _check_objectives(self, args: FairTrainingArguments, specs: dict[str, tuple[float, dict[str, Any]]]) -> None:
        """Refuse, before anything trains, objectives the task cannot feed and settings that contradict."""
        from fairtune.objectives import OBJECTIVES

        provides = set(self.adapter.provides)
        supported = [n for n, c in OBJECTIVES.items() if set(c.needs) <= provides]
        for name, (_, options) in specs.items():
            cls = OBJECTIVES[name]
            key = cls.weight_field or f"objectives.{name}"
            if not set(cls.needs) <= provides:
                raise ValueError(
                    f"`{key}`: not supported for the {self.adapter.name} task (it needs "
                    f"{sorted(set(cls.needs) - provides)}; supported objectives: {', '.join(supported)}); set it to 0."
                )
            missing = sorted(set(cls.needs_for(options)) - provides)
            if missing:
                set_options = ", ".join(f"{k}: {v}" for k, v in options.items() if v is not None)
                raise ValueError(
                    f"`{key}` with {set_options}: the {self.adapter.name} task cannot feed {missing}; keep that "
                    "objective's default options on this task."
                )
        adversary_on = "adversary" in self.objective_weights
        if adversary_on and args.adversary_input == "logits" and self.adapter.name != "classification":
            raise ValueError(
                f"`adversary_input: logits` is for sequence classification (the {self.adapter.name} task predicts "
                "per token or per span); use `adversary_input: representation`."
            )
        if args.gap_groups:
            if self.adapter.name == "classification":
                raise ValueError(
                    "`gap_groups` is for NER/QA gaps; for classification, leave the other groups' rows without a "
                    "group (missing values) so that every group metric compares the groups you keep."
                )
            unknown = [g for g in args.gap_groups if g not in self.group_names]
            if unknown or len(args.gap_groups) < 2:
                raise ValueError(
                    f"`gap_groups`: name at least two of the groups {self.group_names}; got {list(args.gap_groups)}"
                    + (f" ({', '.join(map(repr, unknown))} unknown)." if unknown else ".")
                )
        if args.adversary_label_conditioned and adversary_on and "labels" not in provides:
            raise ValueError(f"`adversary_label_conditioned`: the {self.adapter.name} task has no class labels.")
        needs = [
            OBJECTIVES[n].weight_field or f"objectives.{n}"
            for n in self.objective_weights
            if OBJECTIVES[n].needs_groups
        ]
        if needs and self.num_groups < 2:
            raise ValueError(
                f"{', '.join(f'`{w}`' for w in needs)} need at least two groups, got {self.num_groups} "
                f"({self.group_names}); check `group_column` and the data."
            )

    def _build_objectives(
        self, args: FairTrainingArguments, model, specs: dict[str, tuple[float, dict[str, Any]]]
    ) -> dict[str, Objective]:
        """One instance per active objective: gathered ones first, then local ones (the order terms are added)."""
        from fairtune.objectives import OBJECTIVES

        built: dict[str, Objective] = {}
        context = {"num_groups": self.num_groups, "group_names": tuple(self.group_names)}
        for name in sorted(specs, key=lambda n: not OBJECTIVES[n].gathered):  # stable: canonical order within
            _, options = specs[name]
            extra: dict[str, Any] = {}
            if name == "adversary":  # the adversary module is sized by the model and seeded by the run
                num_labels = getattr(model.config, "num_labels", 1)
                extra = {
                    "input_size": num_labels if args.adversary_input == "logits" else model.config.hidden_size,
                    "num_model_labels": num_labels,
                    "seed": args.seed,
                }
            try:
                built[name] = OBJECTIVES[name](**context, **extra, **options)
            except TypeError as err:
                raise ValueError(f"objective {name!r}: {err}; check its options in `objectives`.") from err
        return built

    @staticmethod
    def _check_hub_strategy(args: FairTrainingArguments) -> None:
        """Checkpoint uploads would carry the adversary and fairtune's training state to the Hub: refuse them."""
        strategy = str(getattr(args.hub_strategy, "value", args.hub_strategy))
        if args.push_to_hub and strategy in ("checkpoint", "all_checkpoints"):
            raise ValueError(
                f"`hub_strategy: {strategy}` would upload checkpoints with the adversary, optimizer and fairtune "
                "training state; use `hub_strategy: every_save` or `end` (fairtune uploads the debiased model, its "
                "card and reports only)."
            )

    @property
    def task_model(self):
        """The user's task model (what is saved and pushed)."""
        return self.accelerator.unwrap_model(self.model).task_model if hasattr(self, "accelerator") else None

    @property
    def group_dro(self):
        """The group DRO objective (its `q` and state), or None."""
        return self.objectives.get("group_dro")

    # ---- batches and counts ----------------------------------------------------------------------------------
    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        """The accumulation window. In the last batch of an epoch, rows that accelerate's `even_batches` repeated
        from the epoch's start are marked (`fairtune_keep`) so that no loss or statistic counts them twice; the
        window's global item counts are kept in fairtune's own state (transformers' count is left as it is)."""
        batch_samples = []
        for _ in range(num_batches):
            try:
                batch = next(epoch_iterator)
            except StopIteration:
                break
            # Read right after the loader yields: its end-of-epoch flag and remainder describe this batch now.
            real = even_batches_real_rows(self.accelerator.gradient_state)
            if real is not None:
                batch[KEEP_KEY] = padding_keep_mask(_num_rows(batch), real, device)
            batch_samples.append(batch)
        self._window_counts = self.count_items(batch_samples, device)
        return batch_samples, self._get_num_items_in_batch(batch_samples, device)

    def count_items(self, batch_samples: list[dict[str, Any]], device: torch.device) -> dict[str, torch.Tensor]:
        """Global item counts over batches: the task's loss items and each local objective's items."""
        local = [n for n, o in self.objectives.items() if not o.gathered]
        counts = torch.zeros(1 + len(local), dtype=torch.float32, device=device)
        for b in batch_samples:
            b = _kept_rows(b)
            counts[0] += float(self.adapter.count_items(b))
            for i, name in enumerate(local, start=1):
                counts[i] += float(self.objectives[name].count_items(b))
        counts = all_sum(counts)
        return {"task": counts[0], **{name: counts[i] for i, name in enumerate(local, start=1)}}

    # ---- loss ------------------------------------------------------------------------------------------------
    def compute_loss(
        self,
        model,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """Task loss + the registered objectives' terms, each logged (see the module docstring for the scaling)."""
        mode = "train" if model.training else "eval"
        inputs = dict(inputs)
        counts = self._window_counts if mode == "train" and self._window_counts is not None else None
        if counts is None:  # evaluation (or a direct call): the batch is its own window
            if mode == "eval" and KEEP_KEY not in inputs:
                real = even_batches_real_rows(self.accelerator.gradient_state)
                if real is not None:
                    inputs[KEEP_KEY] = padding_keep_mask(_num_rows(inputs), real, self.args.device)
            counts = self.count_items([inputs], self.args.device)
        columns = {k: inputs.pop(k) for k in _DROP_KEYS if k in inputs}
        labels = {k: inputs.pop(k) for k in self.adapter.label_names if k in inputs}
        extras = self.adapter.pop_model_extras(inputs)
        if self.adversary is not None:  # the reversal strength of this step, read inside the forward
            self.adversary.strength = self._adversary_strength()
        before = self._before_adversary(columns, labels) if mode == "train" else None
        out: FairOutput = model(**inputs, pool_inputs=extras, before_adversary=before)
        task = self.adapter.outputs(out.task_outputs, labels, out.pooled, extras)
        batch = self._fair_batch(task, out, columns, labels, extras, mode)
        losses = task.losses * columns[WEIGHT_KEY].to(task.losses.dtype) if WEIGHT_KEY in columns else task.losses
        total = losses.sum() / counts["task"].clamp(min=1) * self.accelerator.num_processes
        logs: dict[str, Any] = {"task_loss": Ratio(task.losses.detach().sum(), task.item_counts.detach().sum())}
        terms, values = self._objective_terms(batch, counts, mode, logs)
        task_loss, total = total.detach(), total + terms
        if mode == "train" and not bool(torch.isfinite(total.detach()).all()):
            self._raise_non_finite(task_loss, values)
        self._record(logs, mode, total.device)
        if not return_outputs:
            return total
        preds = task.predictions if isinstance(task.predictions, dict) else {"logits": task.predictions}
        return total, {**preds, POOLED_KEY: out.pooled}

    def _fair_batch(self, task, out: FairOutput, columns, labels, extras, mode: str) -> FairBatch:
        """The local batch view of this micro-batch; rows accelerate repeated get no task loss, group or pair."""
        n, device = task.losses.shape[0], task.losses.device
        groups = columns.get(GROUP_KEY, torch.full((n,), -1, dtype=torch.long, device=device)).long()
        keep = columns.get(KEEP_KEY)
        if keep is not None:
            keep = keep.to(device)
            task.losses, task.item_counts = task.losses * keep, task.item_counts * keep
            groups = torch.where(keep, groups, -1)
            if PAIR_KEY in columns:
                columns[PAIR_KEY] = torch.where(keep, columns[PAIR_KEY], -1)
        pair_log_probs, num_pairs = None, 0
        pair_logits = None
        wanted = {"pair_log_probs", "pair_logits"} & self._batch_needs
        if wanted and PAIR_KEY in columns:
            pairs = find_pairs(columns[PAIR_KEY], columns[IS_CF_KEY]).to(device)
            num_pairs = len(pairs)
            if num_pairs:
                view = {**labels, **columns, **extras}
                if "pair_log_probs" in wanted:
                    pair_log_probs = self.adapter.pair_log_probs(out.task_outputs, view, pairs)
                if "pair_logits" in wanted:
                    pair_logits = self.adapter.pair_logits(out.task_outputs, view, pairs)
        adversary = self.objectives.get("adversary")
        row_weights = None
        if adversary is not None:
            row_weights = self._adversary_row_weights(groups, task.labels if adversary.label_conditioned else None)
        return FairBatch(
            losses=task.extras.get("group_losses", task.losses),  # NER: per-example mean token loss
            groups=groups,
            num_groups=self.num_groups,
            labels=task.labels,
            probs=task.probs,
            representation=out.pooled,
            adversary_logits=out.adversary_logits,
            pair_log_probs=pair_log_probs,
            pair_logits=pair_logits,
            num_pairs=num_pairs,
            row_weights=row_weights,
            training=mode == "train",
            accumulation_steps=self._accumulation_steps(mode),
        )

    def _objective_terms(self, batch: FairBatch, counts, mode: str, logs: dict[str, Any]):
        """The weighted objectives: gathered ones on the global micro-batch (averaged over accumulation steps),
        local ones scaled by their global item counts. Returns (their sum, each objective's (value, term))."""
        gathered_terms, local_terms = None, zero_like_graph(batch.losses)
        global_batch, values = None, {}
        for name, objective in self.objectives.items():
            if objective.gathered:
                if global_batch is None:
                    global_batch = self._gathered(batch, mode)
                    gathered_terms = zero_like_graph(global_batch.losses)
                value, lg = objective(global_batch)
                term = objective.combine(value, self.objective_weights[name])
                gathered_terms = gathered_terms + term
            else:
                batch.scale = self.accelerator.num_processes / counts[name].clamp(min=1)
                value, lg = objective(batch)
                term = objective.combine(value, self.objective_weights[name])
                local_terms = local_terms + term
            values[name] = (value.detach(), term.detach())
            logs.update(lg)
        if gathered_terms is None:
            return local_terms, values
        return gathered_terms / batch.accumulation_steps + local_terms, values

    def _gathered(self, batch: FairBatch, mode: str) -> FairBatch:
        """The batch view gathered over all processes (with gradients) for group statistics."""
        view = FairBatch(
            losses=gather_with_grad(batch.losses),
            groups=gather_with_grad(batch.groups),
            num_groups=self.num_groups,
            labels=gather_with_grad(batch.labels) if batch.labels is not None else None,
            probs=gather_with_grad(batch.probs) if batch.probs is not None else None,
            training=batch.training,
            accumulation_steps=batch.accumulation_steps,
        )
        counts = torch.bincount(view.groups[view.valid], minlength=self.num_groups)
        if mode == "train":
            self._group_batches[0] += 1
            self._group_batches[1] += int((counts > 0).sum()) >= 2
        if mode == "train" and bool((counts < self.args.min_group_count).any()):
            self._few_group_batches += 1
            if self._few_group_batches == 1:
                logger.warning(
                    "A micro-batch holds fewer than %d rows of some group (counts %s). Group objectives are "
                    "computed per micro-batch over all processes; raise the per-device batch size for stabler "
                    "estimates. Further such batches are counted and reported at the end.",
                    self.args.min_group_count,
                    dict(zip(self.group_names, counts.tolist())),
                )
        return view

    def _accumulation_steps(self, mode: str) -> int:
        ga = getattr(self, "current_gradient_accumulation_steps", 1) if mode == "train" else 1
        return max(int(ga or 1), 1)

    def _raise_non_finite(self, task_loss: torch.Tensor, values: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Name the term that went NaN/inf and stop before the broken weights are stepped or saved."""
        bad = [] if bool(torch.isfinite(task_loss).all()) else ["the task loss"]
        for name, (value, term) in values.items():
            if not bool(torch.isfinite(term).all()):
                weight = self.objective_weights[name]
                bad.append(f"{name!r} (weight {weight:g}, value {float(value.float().sum()):.4g})")
        raise NonFiniteLossError(
            f"the training loss is not finite at step {self.state.global_step + 1}: {', '.join(bad) or 'a term'} "
            "went NaN/inf; training stopped and nothing was saved for this step. Lower the learning rate or that "
            "objective's weight, or check the data for extreme values."
        )

    def _record(self, logs: dict[str, Any], mode: str, device: torch.device) -> None:
        """One all-reduce for every `Ratio` (exact global means), then keep the values for `log()`."""
        ratios = [(k, v) for k, v in logs.items() if isinstance(v, Ratio)]
        if ratios:
            parts = [t for _, r in ratios for t in (r.num, 0.0 if r.den is None else r.den)]
            vec = all_sum(torch.stack([torch.as_tensor(p, dtype=torch.float32, device=device) for p in parts]))
            vals = vec.tolist()
            for i, (key, r) in enumerate(ratios):
                num, den = vals[2 * i], vals[2 * i + 1]
                if r.den is None:
                    logs[key] = num
                elif den > 0:
                    logs[key] = num / den
                elif r.empty is not None:
                    logs[key] = r.empty
                else:
                    del logs[key]
        for k, v in logs.items():
            if not isinstance(v, Ratio) and math.isfinite(float(v)):
                self._metrics[mode][k].append(float(v))

    # ---- the adversary's schedule, balance and extra steps ---------------------------------------------------
    def _adversary_strength(self) -> float:
        weight = self.objective_weights.get("adversary", 0.0)
        progress = self.state.global_step / self.state.max_steps if self.state.max_steps else 1.0
        if self.args.adversary_schedule == "ganin" and self.state.max_steps:
            weight *= ganin_schedule(min(1.0, progress))
        if self.args.adversary_warmup_ratio > 0:  # linear ramp 0 -> weight over the first part of training
            weight *= min(1.0, progress / self.args.adversary_warmup_ratio)
        return weight

    def _before_adversary(self, columns: dict[str, Any], labels: dict[str, Any]):
        """The callback that takes `adversary_steps - 1` extra adversary updates inside the wrapped forward."""
        if self.adversary is None or self.args.adversary_steps <= 1:
            return None
        groups = columns.get(GROUP_KEY)
        y = labels.get("labels") if self.args.adversary_label_conditioned else None
        weights = self._adversary_row_weights(groups, y)
        return lambda adversary, rep: self._adversary_inner_steps(adversary, rep, groups, y, weights)

    def _adversary_row_weights(self, groups: torch.Tensor | None, labels: torch.Tensor | None) -> torch.Tensor | None:
        """`adversary_balance`: each row's weight from the training data's (label, group) cell counts (label only
        when the adversary is label-conditioned), identical on every process."""
        if not self.args.adversary_balance or groups is None:
            return None
        if self._adversary_cells is None:  # counted once, from the full training set (the same on every process)
            ds = self.train_dataset
            if ds is None or GROUP_KEY not in getattr(ds, "column_names", ()):
                logger.warning(
                    "`adversary_balance`: no training set with a group column; the adversary is unweighted."
                )
                self._adversary_cells = torch.ones(1, max(self.num_groups, 1))
                return None
            y = None
            if self.args.adversary_label_conditioned and "labels" in ds.column_names:
                y = torch.as_tensor(list(ds["labels"]))
            self._adversary_cells = cell_balance_weights(torch.as_tensor(list(ds[GROUP_KEY])), y, self.num_groups)
        table = self._adversary_cells.to(groups.device)
        g = groups.long().clamp(min=0, max=table.shape[1] - 1)
        y = torch.zeros_like(g) if labels is None else labels.long().clamp(min=0, max=table.shape[0] - 1)
        return table[y, g]

    def _adversary_inner_steps(self, adversary, rep: torch.Tensor, groups, labels, row_weights=None) -> None:
        """`adversary_steps - 1` extra updates of the adversary alone on the detached representation, before the
        joint step: a stronger adversary the encoder cannot beat by flipping groups. Gradients are summed over
        processes by hand (each process divides by the global count), so every copy takes the same step."""
        if groups is None:
            return
        params = [p for p in adversary.parameters() if p.requires_grad]
        if self._adversary_optimizer is None:
            self._adversary_optimizer = torch.optim.Adam(params, lr=self.args.adversary_lr)
        for _ in range(self.args.adversary_steps - 1):
            logits = adversary(rep)[0]
            lsum, _, valid = adversary_loss(logits, groups.long(), labels, row_weights)
            loss = lsum / all_sum(valid.clone()).clamp(min=1)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for p, g in zip(params, grads):
                p.grad = all_sum(g) if g is not None else torch.zeros_like(p)
            self._adversary_optimizer.step()
            self._adversary_optimizer.zero_grad(set_to_none=True)

    # ---- logging ---------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the averaged objective values since the last log (train) or over the evaluation (eval)."""
        mode = "train" if self.model.training else "eval"
        averaged = {k: float(np.mean(v)) for k, v in self._metrics[mode].items() if v}
        if mode == "eval":
            averaged = {f"eval_{k}": v for k, v in averaged.items()}
        logs = {**logs, **averaged}
        self._metrics[mode].clear()
        super().log(logs, start_time)

    # ---- evaluation ------------------------------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", references: Any = None):
        """`Trainer.evaluate`; `references` are what the adapter scores `eval_dataset` against (QA: examples),
        by default the trainer's `eval_references`."""
        with self._references(references if references is not None else self.eval_references):
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", references: Any = None):
        """`Trainer.predict`; predictions are a dict keyed by name (`logits` or `start_logits`/`end_logits`, and
        `pooled`); `references` as in `evaluate`."""
        with self._references(references):
            return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    @contextmanager
    def _references(self, references: Any):
        previous, self._active_references = self._active_references, references
        try:
            yield
        finally:
            self._active_references = previous

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        """Add the objective values averaged over the evaluated batches to the loop's metrics."""
        self._metrics["eval"].clear()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        for k, v in self._metrics["eval"].items():
            if v:
                output.metrics[f"{metric_key_prefix}_{k}"] = float(np.mean(v))
        self._metrics["eval"].clear()
        return output

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Loss, predictions keyed by name (with the pooled vector, never every hidden state) and labels; an
        unlabelled set runs the same forward without a task loss."""
        inputs = self._prepare_inputs(inputs)
        has_labels = bool(self.label_names) and all(inputs.get(k) is not None for k in self.label_names)
        labels = tuple(inputs[k].detach() for k in self.label_names) if has_labels else None
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        loss = loss.detach().mean() if has_labels else None
        if prediction_loss_only:
            return loss, None, None
        skip = set(ignore_keys or [])
        preds = {k: v.detach() for k, v in outputs.items() if k not in skip and v is not None}
        if labels is not None and len(labels) == 1:
            labels = labels[0]
        return loss, preds, labels

    def _compute_fair_metrics(self, eval_pred) -> dict[str, float]:
        """Task metrics, group metrics, counterfactual consistency and the leakage probe."""
        preds = dict(eval_pred.predictions)
        label_ids = eval_pred.label_ids if isinstance(eval_pred.label_ids, tuple) else (eval_pred.label_ids,)
        labels = dict(zip(self.label_names, label_ids))
        pooled = preds.pop(POOLED_KEY, None)
        context = EvalContext(
            group_names=self.group_names,
            label_list=self.label_list,
            gap_groups=list(self.args.gap_groups or []) or None,
            nested=self.nested_report,
            references=self._active_references,
            min_group_size=self.args.min_group_rows,
        )
        metrics = self.adapter.evaluate(preds, labels, context)
        groups = labels.get(GROUP_KEY)
        if self.args.leakage_probe and pooled is not None and groups is not None and self.num_groups >= 2:
            try:
                metrics.update(leakage_probe(pooled, np.asarray(groups), seed=self.args.seed))
            except ValueError as err:
                logger.warning("leakage probe skipped: %s", err)
        metrics.update(selection_metrics(metrics))  # `dto`, usable as `metric_for_best_model`
        return metrics

    def _set_signature_columns_if_needed(self) -> None:
        """The task model's forward decides which columns stay (the FairModel takes `**inputs`), plus the label
        names, the adapter's extra batch columns and `sample_weight`."""
        if self._signature_columns is None:
            import inspect

            from fairtune.modeling import unwrap_peft

            inner = unwrap_peft(self.accelerator.unwrap_model(self.model).task_model)
            names = list(inspect.signature(inner.forward).parameters)
            extra = [*self.label_names, *self.adapter.extra_columns, WEIGHT_KEY, "label", "label_ids"]
            self._signature_columns = list(dict.fromkeys([*names, *extra]))

    # ---- optimizer, sampler ----------------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        """The adversary gets its own parameter group, learning rate and no weight decay."""
        optimizer = super().create_optimizer(model) if model is not None else super().create_optimizer()
        if self.adversary is not None and not any(g.get("fairtune_adversary") for g in optimizer.param_groups):
            adv = {id(p) for p in self.adversary.parameters()}
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in adv]
            optimizer.add_param_group(
                {
                    "params": list(self.adversary.parameters()),
                    "lr": self.args.adversary_lr,
                    "weight_decay": 0.0,
                    "fairtune_adversary": True,
                }
            )
        return optimizer

    def get_train_dataloader(self):
        """With CLP on and counterfactual pairs in the data, batches keep each pair whole (PairedBatchSampler);
        the loader gets every setting the Trainer's own would (workers, their seeding, persistence, prefetch)."""
        from fairtune.sampling import PairedBatchSampler, pair_units, trainer_loader_params

        ds = self.train_dataset
        has_pairs = (
            "clp" in self.objectives
            and hasattr(ds, "column_names")
            and PAIR_KEY in ds.column_names
            and max(ds[PAIR_KEY]) >= 0
        )
        if not has_pairs:
            return super().get_train_dataloader()
        if getattr(self.args, "train_sampling_strategy", None) == "group_by_length":
            logger.warning("`train_sampling_strategy: group_by_length` is ignored: CLP batches keep pairs whole.")
        ds = self._remove_unused_columns(ds, description="Training")
        pair_ids = list(ds[PAIR_KEY])
        weights = None
        if self.args.group_balance == "resample":
            labels = list(ds["labels"]) if "labels" in ds.column_names else None
            row_w = row_balance_weights(list(ds[GROUP_KEY]), labels)
            weights = [row_w[u[0]] for u in pair_units(pair_ids)]
        sampler = PairedBatchSampler(
            pair_ids,
            self._train_batch_size,
            seed=self.args.seed,
            weights=weights,
            drop_last=self.args.dataloader_drop_last,
        )
        from torch.utils.data import DataLoader

        loader = DataLoader(ds, batch_sampler=sampler, **trainer_loader_params(self.args, self.data_collator))
        return self.accelerator.prepare(loader)

    def _get_train_sampler(self, train_dataset=None):
        """`group_balance: resample` draws rows with probability inversely proportional to their group x label cell."""
        if self.args.group_balance != "resample":
            return super()._get_train_sampler(train_dataset)
        ds = train_dataset if train_dataset is not None else self.train_dataset
        labels = list(ds["labels"]) if "labels" in ds.column_names else None
        weights = torch.tensor(row_balance_weights(list(ds[GROUP_KEY]), labels), dtype=torch.double)
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(weights, len(weights), replacement=True, generator=generator)

    # ---- saving and resuming ---------------------------------------------------------------------------------
    @contextmanager
    def _as_task_model(self):
        """Within the block `self.model` is the user's task model: the Trainer's save and load paths then write
        and read a plain transformers / PEFT model (never the FairModel wrapper or the adversary)."""
        wrapper = self.model
        self.model = self.accelerator.unwrap_model(wrapper).task_model
        try:
            yield self.model
        finally:
            self.model = wrapper

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        fair = self.accelerator.unwrap_model(self.model)
        adv_state = None
        if state_dict is not None:  # DeepSpeed / FSDP hand over the gathered FairModel state
            state_dict, adv_state = fair.split_state_dict(state_dict)
        if not adv_state and self.adversary is not None:
            adv_state = self.adversary.state_dict()
        with self._as_task_model():
            super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save and self.args.hub_token is not None:
            from fairtune.hub import scrub_token

            torch.save(scrub_token(self.args), os.path.join(output_dir, "training_args.bin"))  # never pickle a token
        if self.args.should_save:
            self.save_fairtune_config(output_dir)
        if self._in_checkpoint and self.args.should_save:
            if adv_state:
                save_file(
                    {k: v.detach().contiguous().cpu() for k, v in adv_state.items()},
                    os.path.join(output_dir, ADVERSARY_FILE),
                )
            with open(os.path.join(output_dir, STATE_FILE), "w") as f:
                json.dump(self.fairtune_state(), f, indent=2)
            if self._adversary_optimizer is not None:
                torch.save(self._adversary_optimizer.state_dict(), os.path.join(output_dir, ADVERSARY_OPTIMIZER_FILE))

    def _save_checkpoint(self, model, trial) -> None:
        self._in_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._in_checkpoint = False

    def save_fairtune_config(self, output_dir: str) -> None:
        """The resolved configuration beside the saved model (the model card and reproductions read it)."""
        from fairtune.parser import config_to_dict

        config = self.fairtune_config
        if config is None:
            config = config_to_dict(self.args)
            config.update(group_names=self.group_names, label_list=self.label_list, task=self.adapter.name)
        with open(os.path.join(output_dir, CONFIG_FILE), "w") as f:
            json.dump(config, f, indent=2, default=str, allow_nan=False)

    def fairtune_state(self) -> dict[str, Any]:
        """fairtune's own training state (everything beyond weights, optimizer and RNG) for checkpoints: each
        stateful objective's state under its name (`group_dro`: the q weights)."""
        state: dict[str, Any] = {"group_names": self.group_names, "few_group_batches": self._few_group_batches}
        for name, objective in self.objectives.items():
            obj_state = objective.state_dict()
            if obj_state is not None:
                state[name] = obj_state
        state.setdefault("group_dro", None)
        return state

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        with self._as_task_model() as task_model:
            super()._load_from_checkpoint(resume_from_checkpoint, model if model is not None else task_model)
        adv_file = os.path.join(resume_from_checkpoint, ADVERSARY_FILE)
        if self.adversary is not None:
            if not os.path.isfile(adv_file):
                raise ValueError(
                    f"`resume_from_checkpoint`: {resume_from_checkpoint} has no {ADVERSARY_FILE}; it was not written "
                    "by a FairTrainer with an adversary. Resume from a matching checkpoint or start afresh."
                )
            self.adversary.load_state_dict(load_file(adv_file, device="cpu"))
            opt_file = os.path.join(resume_from_checkpoint, ADVERSARY_OPTIMIZER_FILE)
            if self.args.adversary_steps > 1 and os.path.isfile(opt_file):
                params = [p for p in self.adversary.parameters() if p.requires_grad]
                self._adversary_optimizer = torch.optim.Adam(params, lr=self.args.adversary_lr)
                self._adversary_optimizer.load_state_dict(torch.load(opt_file, map_location="cpu"))
        state_file = os.path.join(resume_from_checkpoint, STATE_FILE)
        if os.path.isfile(state_file):
            with open(state_file) as f:
                state = json.load(f)
            for name, objective in self.objectives.items():
                if state.get(name):
                    objective.load_state_dict(state[name])
            self._few_group_batches = state.get("few_group_batches", 0)

    def _load_best_model(self) -> None:
        with self._as_task_model():
            super()._load_best_model()
        adv_file = os.path.join(self.state.best_model_checkpoint or "", ADVERSARY_FILE)
        if self.adversary is not None and os.path.isfile(adv_file):
            self.adversary.load_state_dict(load_file(adv_file, device="cpu"))

    def train(self, *args, **kwargs):
        result = super().train(*args, **kwargs)
        seen, with_two = self._group_batches
        if seen and not with_two:
            names = [n for n, o in self.objectives.items() if o.gathered]
            logger.warning(
                "%s: no training micro-batch held rows of two groups, so the group objective(s) added nothing. "
                "Raise `per_device_train_batch_size`, or draw balanced batches with `group_balance: resample`.",
                ", ".join(f"`{n}`" for n in names),
            )
        if self._few_group_batches:
            logger.warning(
                "%d training micro-batches held fewer than %d rows of some group.",
                self._few_group_batches,
                self.args.min_group_count,
            )
        return result

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """`hub_strategy: every_save`: upload the checkpoint's model (never its training state) with fairtune."""
        strategy = str(getattr(self.args.hub_strategy, "value", self.args.hub_strategy))
        if not self.is_world_process_zero() or strategy == "end":
            return
        import shutil

        from fairtune.hub import is_training_state

        out = self.args.output_dir
        for name in os.listdir(checkpoint_folder):
            src = os.path.join(checkpoint_folder, name)
            if os.path.isfile(src) and not is_training_state(name):
                shutil.copy2(src, os.path.join(out, name))
        self.save_fairtune_config(out)
        self.push_to_hub(commit_message=f"Training in progress, step {self.state.global_step}")

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token=None,
        revision: str | None = None,
        **kwargs,
    ):
        """Upload the debiased model, tokenizer, fairtune config, reports and fairtune's card (main process only);
        never the adversary, optimizer states, checkpoints or `training_args.bin`."""
        from fairtune.hub import push

        if not self.is_world_process_zero():
            return None
        repo_id = (
            self.hub_model_id or self.args.hub_model_id or os.path.basename(os.path.abspath(self.args.output_dir))
        )
        self.create_model_card()
        return push(
            self.args.output_dir,
            repo_id,
            private=bool(self.args.hub_private_repo),
            revision=revision or self.args.hub_revision,
            commit_message=commit_message,
            token=token or self.args.hub_token,
        )

    def create_model_card(self, *args, **kwargs) -> None:
        """fairtune owns the card: transformers' own drops non-standard (fairness) metrics."""
        if not self.is_world_process_zero():
            return
        from fairtune.cards import write_model_card

        write_model_card(self.args.output_dir)


def _num_rows(batch: dict[str, Any]) -> int:
    """Rows in a collated batch (the first dimension of its first tensor)."""
    return next(int(v.shape[0]) for v in batch.values() if torch.is_tensor(v) and v.dim() > 0)


def _kept_rows(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch without the rows marked as even_batches repeats (the batch itself when none are)."""
    keep = batch.get(KEEP_KEY)
    if keep is None or bool(keep.all()):
        return batch
    n = keep.shape[0]
    return {k: (v[keep] if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == n else v) for k, v in batch.items()}
