"""FairTrainer: a transformers Trainer whose loss is the task loss plus weighted fairness and adversarial terms.

compute_loss runs one forward over the batch (originals and counterfactuals together); the task adapter turns
the outputs into per-example losses, probabilities and a pooled representation; each objective turns those into a
scalar and the numbers it logs. The task loss, the adversary's loss and CLP are sums over examples normalised by
the global count of the accumulation window, so they equal one big batch whatever the number of processes or
accumulation steps. Group objectives (DP, EO, MinDiff, DRO, loss parity) are computed per micro-batch over all
processes (gathered with gradients) and averaged over accumulation steps: they are not sums over examples.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer

from fairtune.config import GROUP_OBJECTIVES, OBJECTIVE_WEIGHTS, FairTrainingArguments
from fairtune.distributed import all_sum, even_batches_real_rows, gather_with_grad, padding_keep_mask
from fairtune.objectives import group as G
from fairtune.objectives.adversarial import (
    Adversary,
    adversary_loss,
    cell_balance_weights,
    confusion_loss,
    ganin_schedule,
    leakage_probe,
)
from fairtune.objectives.base import FairBatch, zero_like_graph
from fairtune.objectives.counterfactual import find_pairs, pair_divergence
from fairtune.representation import (
    ADV_LOGITS_KEY,
    ADVERSARY_ATTR,
    POOLED_KEY,
    RepresentationHooks,
    is_decoder_model,
)
from fairtune.selection import selection_metrics
from fairtune.tasks.base import FAIRTUNE_KEYS, GROUP_KEY, IS_CF_KEY, PAIR_KEY, TaskAdapter

logger = logging.getLogger(__name__)

ADVERSARY_FILE = "fairtune_adversary.safetensors"
STATE_FILE = "fairtune_state.json"
CONFIG_FILE = "fairtune_config.json"
ADVERSARY_OPTIMIZER_FILE = "fairtune_adversary_optimizer.pt"
WEIGHT_KEY = "sample_weight"
KEEP_KEY = "fairtune_keep"  # rows to count; False on rows accelerate repeated to even out the last batch
_DROP_KEYS = (*FAIRTUNE_KEYS, WEIGHT_KEY, KEEP_KEY)


class FairTrainer(Trainer):
    """Trainer with fairness objectives and a gradient-reversal adversary, each switchable from the arguments.

    Args:
        model: a transformers (or PEFT) model for the adapter's task.
        args: `FairTrainingArguments`.
        task_adapter: the task's adapter (default: sequence classification).
        group_names: names of the groups behind the `group` ids (their number sizes the objectives).
        label_list: names of the classes (classification), for reports.
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
        fairtune_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        from fairtune.tasks.classification import ClassificationAdapter

        if args is None:
            args = FairTrainingArguments(output_dir="outputs/fairtune")
        if not isinstance(args, FairTrainingArguments):
            raise TypeError("`args` must be a FairTrainingArguments (it carries the objective weights).")
        self.adapter = task_adapter or ClassificationAdapter()
        self.group_names = [str(g) for g in (group_names or [])]
        self.num_groups = len(self.group_names)
        self.label_list = list(label_list or [])
        self.fairtune_config = fairtune_config
        self._check_objectives(args)
        self._check_hub_strategy(args)
        if args.label_names is None:
            args.label_names = [*self.adapter.label_names, *FAIRTUNE_KEYS]

        self.group_dro = G.GroupDRO(self.num_groups, args.group_dro_step_size) if args.group_dro_weight > 0 else None
        self.adversary: Adversary | None = None
        if args.adversary_weight > 0:
            num_model_labels = getattr(model.config, "num_labels", 1)
            num_labels = num_model_labels if args.adversary_label_conditioned else 1
            with torch.random.fork_rng(devices=[]):  # reproducible, identical on every process
                torch.manual_seed(args.seed)
                self.adversary = Adversary(
                    input_size=num_model_labels if args.adversary_input == "logits" else model.config.hidden_size,
                    num_groups=self.num_groups,
                    hidden_size=args.adversary_hidden_size,
                    num_layers=args.adversary_layers,
                    num_adversaries=args.num_adversaries,
                    num_labels=num_labels,
                    mode=args.adversary_mode,
                )
            # Registered on the top-level model after any PEFT wrapping: trainable, moved to the device, wrapped
            # by DDP/DeepSpeed, called inside the forward (a hook). `_save` keeps it out of the saved model.
            model.add_module(ADVERSARY_ATTR, self.adversary)
        is_decoder = is_decoder_model(model)
        self.hooks = RepresentationHooks(
            model, lambda h, m: self.adapter.pool(h, m, is_decoder), adversary_input=args.adversary_input
        )
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._few_group_batches = 0
        self._in_checkpoint = False
        self._adversary_optimizer: torch.optim.Optimizer | None = None
        self._adversary_cells: torch.Tensor | None = None  # adversary_balance: [labels, groups] weights
        #: when True, evaluation metrics also carry the nested `per_group` table (for reports, not for logging)
        self.nested_report = False
        if kwargs.get("compute_metrics") is None:
            kwargs["compute_metrics"] = self._compute_fair_metrics
        super().__init__(model=model, args=args, **kwargs)
        self.model_accepts_loss_kwargs = False

    # ---- set-up checks ---------------------------------------------------------------------------------------
    def _check_objectives(self, args: FairTrainingArguments) -> None:
        on = [w for w in OBJECTIVE_WEIGHTS if getattr(args, w) > 0]
        unsupported = [w for w in on if w not in self.adapter.supported_objectives]
        if unsupported:
            raise ValueError(
                f"{', '.join(f'`{w}`' for w in unsupported)}: not supported for the {self.adapter.name} task "
                f"(supported: {', '.join(sorted(self.adapter.supported_objectives))}); set it to 0."
            )
        if args.adversary_input == "logits" and args.adversary_weight > 0 and self.adapter.name != "classification":
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
        if args.adversary_label_conditioned and args.adversary_weight > 0 and not self.adapter.has_class_labels:
            raise ValueError(f"`adversary_label_conditioned`: the {self.adapter.name} task has no class labels.")
        needs = [w for w in on if w in GROUP_OBJECTIVES or w == "adversary_weight"]
        if needs and self.num_groups < 2:
            raise ValueError(
                f"{', '.join(f'`{w}`' for w in needs)} need at least two groups, got {self.num_groups} "
                f"({self.group_names}); check `group_column` and the data."
            )

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
    def _group_objectives(self) -> list[tuple[str, float]]:
        return [(w, getattr(self.args, w)) for w in GROUP_OBJECTIVES if getattr(self.args, w) > 0]

    # ---- loss ------------------------------------------------------------------------------------------------
    def _adversary_strength(self) -> float:
        weight = self.args.adversary_weight
        progress = self.state.global_step / self.state.max_steps if self.state.max_steps else 1.0
        if self.args.adversary_schedule == "ganin" and self.state.max_steps:
            weight *= ganin_schedule(min(1.0, progress))
        if self.args.adversary_warmup_ratio > 0:  # linear ramp 0 -> weight over the first part of training
            weight *= min(1.0, progress / self.args.adversary_warmup_ratio)
        return weight

    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        """The accumulation window; in the last batch of an epoch, rows that accelerate's `even_batches` repeated
        from the epoch's start are marked (`fairtune_keep`) so that no loss or statistic counts them twice."""
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
        return batch_samples, self._get_num_items_in_batch(batch_samples, device)

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> dict[str, torch.Tensor]:
        """Global counts over the accumulation window: task items, grouped rows (adversary), CLP pairs."""
        task = adv = clp = 0
        for b in batch_samples:
            b = _kept_rows(b)
            task += int(self.adapter.count_items(b))
            if GROUP_KEY in b:
                adv += int((b[GROUP_KEY] >= 0).sum())
            if PAIR_KEY in b and IS_CF_KEY in b:
                clp += len(find_pairs(b[PAIR_KEY], b[IS_CF_KEY]))
        vec = all_sum(torch.tensor([task, adv, clp], dtype=torch.float32, device=device))
        return {"task": vec[0], "adversary": vec[1], "clp": vec[2]}

    def compute_loss(
        self,
        model,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: dict[str, torch.Tensor] | None = None,
    ):
        """Task loss + weighted objectives + adversary, each logged; see the module docstring for the scaling."""
        mode = "train" if model.training else "eval"
        if mode == "eval" and KEEP_KEY not in inputs:  # evaluation computes each batch as soon as it is loaded
            real = even_batches_real_rows(self.accelerator.gradient_state)
            if real is not None:
                inputs[KEEP_KEY] = padding_keep_mask(_num_rows(inputs), real, self.args.device)
        if not isinstance(num_items_in_batch, dict):
            num_items_in_batch = self._get_num_items_in_batch([inputs], self.args.device)
        fair = {k: inputs.pop(k) for k in _DROP_KEYS if k in inputs}
        keep = fair.pop(KEEP_KEY, None)
        labels = {k: inputs.pop(k) for k in self.adapter.label_names if k in inputs}
        extra = self.adapter.pop_model_extras(inputs) if hasattr(self.adapter, "pop_model_extras") else {}
        self.hooks.extra = extra
        self.hooks.before_adversary = None
        if self.adversary is not None and self.args.adversary_steps > 1 and mode == "train":
            targets = (
                fair.get(GROUP_KEY),
                labels.get("labels") if self.args.adversary_label_conditioned else None,
            )
            self.hooks.before_adversary = lambda adv, rep: self._adversary_inner_steps(
                adv, rep, *targets, self._adversary_row_weights(*targets)
            )
        if self.adversary is not None:
            self.adversary.strength = self._adversary_strength()
        outputs = model(**inputs)
        pooled = outputs.get(POOLED_KEY) if isinstance(outputs, dict) else None
        task = (
            self.adapter.outputs(outputs, labels, pooled, extra)
            if extra
            else self.adapter.outputs(outputs, labels, pooled)
        )
        n = task.losses.shape[0]
        device = task.losses.device
        groups = fair.get(GROUP_KEY, torch.full((n,), -1, dtype=torch.long, device=device)).long()
        if keep is not None:  # repeated rows: no task loss, no group, no pair
            keep = keep.to(device)
            task.losses = task.losses * keep
            task.item_counts = task.item_counts * keep
            groups = torch.where(keep, groups, -1)
            if PAIR_KEY in fair:
                fair[PAIR_KEY] = torch.where(keep, fair[PAIR_KEY], -1)
        world = self.accelerator.num_processes
        ga = getattr(self, "current_gradient_accumulation_steps", 1) if mode == "train" else 1
        ga = max(int(ga or 1), 1)

        weights = fair.get(WEIGHT_KEY)
        losses = task.losses * weights.to(task.losses.dtype) if weights is not None else task.losses
        total = losses.sum() / num_items_in_batch["task"].clamp(min=1) * world
        sums = [task.losses.detach().sum(), task.item_counts.detach().sum()]
        logs: dict[str, float] = {}

        if self._group_objectives:
            total = total + self._group_terms(task, groups, mode, logs) / ga

        if self.adversary is not None:
            adv_out = outputs[ADV_LOGITS_KEY]
            adv_labels = task.labels if self.args.adversary_label_conditioned else None
            row_weights = self._adversary_row_weights(groups, adv_labels)
            lsum, correct, valid = adversary_loss(adv_out[0], groups, adv_labels, row_weights)
            total = total + lsum / num_items_in_batch["adversary"].clamp(min=1) * world
            if adv_out.shape[0] > 1:  # confusion mode: the encoder is pushed towards uniform group predictions
                conf = confusion_loss(adv_out[1], groups, adv_labels, row_weights)
                total = total + self.adversary.strength * conf / num_items_in_batch["adversary"].clamp(min=1) * world
                logs["adversary_confusion"] = float(conf.detach()) / max(float(valid), 1.0)
            if self.args.num_adversaries > 1:
                orth = self.adversary.orthogonality()
                total = total + self.args.adversary_orthogonality_weight * orth / ga
                logs["adversary_orthogonality"] = float(orth.detach())
            sums += [lsum.detach(), correct, valid]
            logs["adversary_strength"] = float(self.adversary.strength)

        if self.args.clp_weight > 0:
            pairs = find_pairs(fair[PAIR_KEY], fair[IS_CF_KEY]) if PAIR_KEY in fair else torch.zeros((0, 2))
            if len(pairs):
                a, b, mask = self.adapter.pair_log_probs(outputs, {**labels, **fair, **extra}, pairs.to(device))
                clp_sum = pair_divergence(a, b, mask).sum()
            else:
                clp_sum = zero_like_graph(task.losses)
            total = total + self.args.clp_weight * clp_sum / num_items_in_batch["clp"].clamp(min=1) * world
            sums += [clp_sum.detach(), torch.tensor(float(len(pairs)), device=device)]

        self._log_sums(sums, logs, mode)
        if return_outputs:
            preds = task.predictions if isinstance(task.predictions, dict) else {"logits": task.predictions}
            out = dict(preds)
            if pooled is not None:
                out[POOLED_KEY] = pooled
            return total, out
        return total

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

    def _group_terms(self, task, groups: torch.Tensor, mode: str, logs: dict[str, float]) -> torch.Tensor:
        """Weighted sum of the group objectives over the global micro-batch (gathered with gradients)."""
        batch = FairBatch(
            losses=gather_with_grad(task.extras.get("group_losses", task.losses)),  # QA/NER: NER's per-token mean
            groups=gather_with_grad(groups),
            num_groups=self.num_groups,
            labels=gather_with_grad(task.labels) if task.labels is not None else None,
            probs=gather_with_grad(task.probs) if task.probs is not None else None,
        )
        counts = torch.bincount(batch.groups[batch.valid], minlength=self.num_groups)
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
        total = zero_like_graph(batch.losses)
        for name, weight in self._group_objectives:
            if name == "dp_weight":
                value, lg = G.demographic_parity_gap(batch)
            elif name == "eo_weight":
                value, lg = G.equalized_odds_gap(batch)
            elif name == "mindiff_weight":
                value, lg = G.mindiff_mmd(
                    batch, self.args.mindiff_kernel, self.args.mindiff_bandwidth, self.args.mindiff_label
                )
            elif name == "group_dro_weight":
                value, lg = self.group_dro(batch, update=mode == "train")
                lg = {
                    (
                        f"group_dro_q_{self.group_names[int(k.rsplit('_', 1)[1])]}"
                        if k.startswith("group_dro_q_")
                        else k
                    ): v
                    for k, v in lg.items()
                }
            else:
                value, lg = G.loss_parity(batch)
            total = total + weight * value
            logs.update(lg)
        return total

    def _log_sums(self, sums: list[torch.Tensor], logs: dict[str, float], mode: str) -> None:
        """One all-reduce for every summed statistic, then record global per-micro-batch means."""
        vec = all_sum(torch.stack([torch.as_tensor(s, dtype=torch.float32, device=sums[0].device) for s in sums]))
        vals = vec.tolist()
        if vals[1] > 0:
            logs["task_loss"] = vals[0] / vals[1]
        i = 2
        if self.adversary is not None:
            if vals[i + 2] > 0:
                logs["adversary_loss"] = vals[i] / vals[i + 2]
                logs["adversary_accuracy"] = vals[i + 1] / vals[i + 2]
            i += 3
        if self.args.clp_weight > 0:
            logs["clp"] = vals[i] / vals[i + 1] if vals[i + 1] > 0 else 0.0
            logs["clp_pairs"] = vals[i + 1]
        for k, v in logs.items():
            if math.isfinite(v):
                self._metrics[mode][k].append(v)

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
        """Unlabelled sets (no task labels) go to the model directly: drop fairtune's columns first."""
        ignore_keys = list(ignore_keys or []) + [ADV_LOGITS_KEY, "hidden_states", "attentions"]
        if not all(inputs.get(k) is not None for k in self.adapter.label_names):
            extras = getattr(self.adapter, "extra_columns", ())  # QA/NER: adapter-only batch columns
            inputs = {
                k: v
                for k, v in inputs.items()
                if k not in _DROP_KEYS and k not in self.adapter.label_names and k not in extras
            }
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def _compute_fair_metrics(self, eval_pred) -> dict[str, float]:
        """Task metrics, group metrics, counterfactual consistency and the leakage probe."""
        preds = eval_pred.predictions if isinstance(eval_pred.predictions, tuple) else (eval_pred.predictions,)
        label_ids = eval_pred.label_ids if isinstance(eval_pred.label_ids, tuple) else (eval_pred.label_ids,)
        labels = dict(zip(self.args.label_names, label_ids))
        pooled = preds[-1] if len(preds) > 1 else None
        main = preds[:-1] if pooled is not None else preds
        metrics = self.adapter.evaluate(
            main if len(main) > 1 else main[0],
            labels,
            group_names=self.group_names,
            label_list=self.label_list,
            trainer=self,
            nested=self.nested_report,
        )
        groups = labels.get(GROUP_KEY)
        if self.args.leakage_probe and pooled is not None and groups is not None and self.num_groups >= 2:
            try:
                probe = leakage_probe(pooled, np.asarray(groups), seed=self.args.seed)
                metrics.update(probe)
            except ValueError as err:
                logger.warning("leakage probe skipped: %s", err)
        metrics.update(selection_metrics(metrics))  # `dto`, usable as `metric_for_best_model`
        return metrics

    def _set_signature_columns_if_needed(self) -> None:
        """QA/NER: keep the adapter's extra batch columns (and `sample_weight`) through `remove_unused_columns`."""
        super()._set_signature_columns_if_needed()
        extra = [*getattr(self.adapter, "extra_columns", ()), WEIGHT_KEY]
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *extra]))

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
        """With CLP on and counterfactual pairs in the data, batches keep each pair whole (PairedBatchSampler)."""
        ds = self.train_dataset
        has_pairs = (
            self.args.clp_weight > 0
            and hasattr(ds, "column_names")
            and PAIR_KEY in ds.column_names
            and max(ds[PAIR_KEY]) >= 0
        )
        if not has_pairs:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        from fairtune.data import balance_weights
        from fairtune.sampling import PairedBatchSampler, pair_units

        if getattr(self.args, "train_sampling_strategy", None) == "group_by_length":
            logger.warning("`train_sampling_strategy: group_by_length` is ignored: CLP batches keep pairs whole.")
        ds = self._remove_unused_columns(ds, description="Training")
        pair_ids = list(ds[PAIR_KEY])
        weights = None
        if self.args.group_balance == "resample":
            labels = list(ds["labels"]) if "labels" in ds.column_names else None
            row_w = balance_weights(list(ds[GROUP_KEY]), labels)
            weights = [row_w[u[0]] for u in pair_units(pair_ids)]
        sampler = PairedBatchSampler(
            pair_ids,
            self._train_batch_size,
            seed=self.args.seed,
            weights=weights,
            drop_last=self.args.dataloader_drop_last,
        )
        loader = DataLoader(
            ds,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def _get_train_sampler(self, train_dataset=None):
        """`group_balance: resample` draws rows with probability inversely proportional to their group x label cell."""
        if self.args.group_balance != "resample":
            return super()._get_train_sampler(train_dataset)
        from fairtune.data import balance_weights

        ds = train_dataset if train_dataset is not None else self.train_dataset
        labels = list(ds["labels"]) if "labels" in ds.column_names else None
        weights = torch.tensor(balance_weights(list(ds[GROUP_KEY]), labels), dtype=torch.double)
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(weights, len(weights), replacement=True, generator=generator)

    # ---- saving and resuming ---------------------------------------------------------------------------------
    @contextmanager
    def _without_adversary(self):
        """Temporarily remove the adversary so that saved models are plain transformers/PEFT models."""
        owner = self.model if self.adversary is not None and hasattr(self.model, ADVERSARY_ATTR) else None
        if owner is None:
            yield
            return
        module = owner._modules.pop(ADVERSARY_ATTR)
        try:
            yield
        finally:
            owner._modules[ADVERSARY_ATTR] = module

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        adv_state = None
        if self.adversary is not None:
            prefix = ADVERSARY_ATTR + "."
            if state_dict is not None:
                adv_state = {k.split(prefix, 1)[1]: v for k, v in state_dict.items() if prefix in k}
                state_dict = {k: v for k, v in state_dict.items() if prefix not in k}
            if not adv_state:
                adv_state = self.adversary.state_dict()
        with self._without_adversary():
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
            json.dump(config, f, indent=2, default=str)

    def fairtune_state(self) -> dict[str, Any]:
        """fairtune's own training state (everything beyond weights, optimizer and RNG) for checkpoints."""
        return {
            "group_names": self.group_names,
            "group_dro": self.group_dro.state_dict() if self.group_dro is not None else None,
            "few_group_batches": self._few_group_batches,
        }

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        with self._without_adversary():
            super()._load_from_checkpoint(resume_from_checkpoint, model)
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
            if self.group_dro is not None and state.get("group_dro"):
                self.group_dro.load_state_dict(state["group_dro"])
            self._few_group_batches = state.get("few_group_batches", 0)

    def _load_best_model(self) -> None:
        with self._without_adversary():
            super()._load_best_model()
        adv_file = os.path.join(self.state.best_model_checkpoint or "", ADVERSARY_FILE)
        if self.adversary is not None and os.path.isfile(adv_file):
            self.adversary.load_state_dict(load_file(adv_file, device="cpu"))

    def train(self, *args, **kwargs):
        result = super().train(*args, **kwargs)
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
        try:
            from fairtune.cards import write_model_card
        except ImportError:  # pragma: no cover - cards module is part of the package
            return super().create_model_card(*args, **kwargs)
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
