"""One training run, end to end: recipe -> data -> (augmentation) -> model -> FairTrainer -> reports -> save."""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, set_seed

import fairtune
from fairtune.cards.secrets import redact_command
from fairtune.config import DataArguments, FairTrainingArguments, ModelArguments
from fairtune.data import encode_datasets, load_raw_datasets
from fairtune.parser import config_to_dict
from fairtune.reporting import write_fairness_report
from fairtune.tasks import get_adapter
from fairtune.trainer import FairTrainer

logger = logging.getLogger(__name__)


def load_tokenizer(model_args: ModelArguments):
    """The tokenizer, with a pad token for decoders that ship none."""
    tok = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path,
        trust_remote_code=model_args.trust_remote_code,
        revision=model_args.model_revision,
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def load_model(model_args: ModelArguments, adapter, tokenizer, label_list: list[str] | None = None):
    """The task model (optionally with LoRA adapters; heads stay trainable)."""
    kwargs: dict[str, Any] = {"trust_remote_code": model_args.trust_remote_code, "revision": model_args.model_revision}
    if label_list:
        kwargs.update(
            ignore_mismatched_sizes=True,  # a fine-tuned checkpoint may come with another label set
            num_labels=len(label_list),
            id2label=dict(enumerate(label_list)),
            label2id={name: i for i, name in enumerate(label_list)},
        )
    if model_args.load_in_4bit:
        from transformers import BitsAndBytesConfig

        from fairtune.peft_utils import check_4bit_support

        check_4bit_support()

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    model = adapter.model_class().from_pretrained(model_args.model_name_or_path, **kwargs)
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if model_args.use_peft:
        from fairtune.peft_utils import wrap_with_lora

        model = wrap_with_lora(model, model_args, adapter)
    return model


def _truncate(ds, n: int | None):
    return ds.select(range(min(n, len(ds)))) if n else ds


@dataclasses.dataclass
class PreparedData:
    """A run's data as the trainer sees it: the configured adapter, tokenized splits and evaluation references."""

    adapter: Any
    data_args: DataArguments
    enc: Any
    label_list: list[str]
    tokenizer: Any
    processed: dict[str, Any]
    references: dict[str, Any]


def prepare_data(
    model_args: ModelArguments, data_args: DataArguments, training_args: FairTrainingArguments
) -> PreparedData:
    """Load, validate, truncate, augment, group, encode and tokenize every split (before any model is loaded)."""
    adapter = get_adapter(model_args.task)
    raw = load_raw_datasets(data_args)
    from fairtune.data.validation import validate_raw_datasets  # issue 13: rows checked before any model loads

    raw = validate_raw_datasets(raw, data_args, adapter.name, training_args)
    if "train" in raw:
        raw["train"] = _truncate(raw["train"], data_args.max_train_samples)
    for split in ("validation", "test"):
        if split in raw:
            raw[split] = _truncate(raw[split], data_args.max_eval_samples)
    if data_args.cda != "none" and "train" in raw:
        from fairtune.cda import augment_split

        raw["train"] = augment_split(raw["train"], data_args, adapter.name)
    if data_args.cda != "none" and adapter.has_class_labels:
        # Counterfactual consistency (flip rate, CTF gap) is measured on swapped copies of the evaluation splits.
        from fairtune.cda import augment_split

        eval_cda = dataclasses.replace(data_args, cda="two_sided")
        for split in [s for s in ("validation", "test") if s in raw]:
            raw[f"{split}_counterfactual"] = augment_split(raw[split], eval_cda, adapter.name)
    if data_args.group_from_lexicon:
        # After augmentation, so that each counterfactual is labelled by the terms it now mentions; the run then
        # groups by that column (a copy of the caller's arguments says so).
        from fairtune.cda import LEXICON_GROUP_COLUMN, add_lexicon_groups

        raw = add_lexicon_groups(raw, data_args, adapter)
        data_args = dataclasses.replace(data_args, group_column=LEXICON_GROUP_COLUMN)
    encoded, enc = encode_datasets(raw, data_args, training_args, has_class_labels=adapter.has_class_labels)
    label_list = adapter.resolve_labels(encoded, data_args, enc)
    adapter = adapter.configured(data_args, label_list)

    tokenizer = load_tokenizer(model_args)
    processed, references = {}, {}
    for split, ds in encoded.items():
        features = adapter.preprocess(ds, tokenizer, data_args, split)
        processed[split], references[split] = adapter.eval_references(ds, features)
    return PreparedData(adapter, data_args, enc, label_list, tokenizer, processed, references)


def run_training(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: FairTrainingArguments,
    command: str | None = None,
) -> dict[str, Any]:
    """Train (when there is a train split), evaluate on validation/test, write reports and the model."""
    set_seed(training_args.seed)
    prep = prepare_data(model_args, data_args, training_args)
    adapter, data_args, enc, label_list = prep.adapter, prep.data_args, prep.enc, prep.label_list
    tokenizer, processed, references = prep.tokenizer, prep.processed, prep.references
    model = load_model(model_args, adapter, tokenizer, label_list)

    out_dir = Path(training_args.output_dir)
    config = config_to_dict(model_args, data_args, training_args)
    config.update(
        command=command or " ".join(shlex.quote(a) for a in redact_command(["fairtune", *sys.argv[1:]])),
        fairtune_version=fairtune.__version__,
        group_names=enc.group_names,
        label_list=label_list,
        group_counts=enc.group_counts,
    )
    trainer = FairTrainer(
        model=model,
        fairtune_config=config,
        args=training_args,
        task_adapter=adapter,
        group_names=enc.group_names,
        label_list=label_list,
        train_dataset=processed.get("train"),
        eval_dataset=processed.get("validation"),
        eval_references=references.get("validation"),
        processing_class=tokenizer,
        data_collator=adapter.collator(tokenizer),
    )
    if trainer.is_world_process_zero():  # written before training, so a failed run still says what it was
        out_dir.mkdir(parents=True, exist_ok=True)
        trainer.save_fairtune_config(str(out_dir))

    results: dict[str, Any] = {}
    if "train" in processed:
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        results["train"] = train_result.metrics
        if training_args.erasure != "none":
            results["erasure"] = erase_after_training(trainer, processed, len(enc.group_names))
        trainer.save_model()
        trainer.save_state()  # trainer_state.json: the log history with every objective's values
    for split in ("validation", "test"):
        if split in processed:
            results[split] = split_report(trainer, prep, split)
    report_split = report_split_of(processed)
    if report_split and "erasure" in results:  # what the fold did, next to the final metrics
        results[report_split].update(
            {f"erasure_{k}": v for k, v in results["erasure"].items() if isinstance(v, (int, float))}
        )
    if report_split and trainer.is_world_process_zero():
        write_fairness_report(out_dir, results[report_split], title=f"fairtune fairness report ({report_split})")
        (out_dir / "all_results.json").write_text(json.dumps(results, indent=2, default=float))
    if trainer.is_world_process_zero() and "train" in processed:
        try:
            trainer.create_model_card()
        except Exception as err:  # a card must never lose a finished training run
            logger.warning("model card not written: %s", err)
    if training_args.push_to_hub and "train" in processed:
        trainer.push_to_hub()
    results["output_dir"] = str(out_dir)
    return results


def report_split_of(processed: dict[str, Any]) -> str | None:
    """The split `fairness_report.json` describes: test when there is one, else validation."""
    return "test" if "test" in processed else "validation" if "validation" in processed else None


def split_report(trainer: FairTrainer, prep: PreparedData, split: str) -> dict[str, Any]:
    """A split's report, with the flip rate and CTF gap measured on its counterfactual copy when there is one."""
    report = evaluate_split(trainer, prep.processed[split], split, prep.references.get(split))
    cf_split = f"{split}_counterfactual"
    if cf_split in prep.processed:
        cf_report = evaluate_split(trainer, prep.processed[cf_split], cf_split, prep.references.get(cf_split))
        for key in COUNTERFACTUAL_KEYS:
            if key in cf_report:
                report[key] = cf_report[key]
    return report


COUNTERFACTUAL_KEYS = ("flip_rate", "ctf_gap", "counterfactual_pairs")


def erase_after_training(
    trainer: FairTrainer, processed: dict[str, Any], num_groups: int, method: str | None = None
) -> dict[str, Any]:
    """`erasure: leace | orth`: fit the eraser on the training split's head inputs, fold it into the head (the model
    stays a plain transformers model) and put the erased model in the trainer for the final evaluation and saving.
    Returns what was done, with the held-out probe on the head input before and after (validation, else test)."""
    from fairtune.posthoc.step import erase_model, erasure_report

    args = trainer.args
    fair = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(fair.task_model, "peft_config"):
        raise ValueError(
            "`erasure`: the eraser folds into a full head; with `use_peft` merge the adapter first "
            "(model.merge_and_unload()) and run `fairtune erase` on the merged model."
        )
    fit_batches = trainer.get_eval_dataloader(processed["train"])
    erased, fit, info = erase_model(
        fair.task_model,
        list(fit_batches) if args.erasure_refit_head else fit_batches,
        num_groups,
        method=method or args.erasure,
        refit_head=args.erasure_refit_head,
        refit_epochs=args.erasure_refit_epochs,
        seed=args.seed,
        accelerator=trainer.accelerator,
    )
    held_out = next((processed[s] for s in ("validation", "test") if s in processed), None)
    if held_out is not None:
        info.update(
            erasure_report(
                fair.task_model,
                erased,
                fit,
                trainer.get_eval_dataloader(held_out),
                seed=args.seed,
                fit_batches=trainer.get_eval_dataloader(processed["train"]),
            )
        )
    fair.task_model = erased  # the FairModel (fairtune's wrapper) now holds the erased model; the caller's is intact
    return {k: v for k, v in info.items() if isinstance(v, (int, float, str, list, dict, bool))}


def evaluate_split(trainer: FairTrainer, dataset, split: str, references: Any = None) -> dict[str, Any]:
    """Predict on a split and return its report: the evaluation metrics (no prefix) with the nested per-group
    table, the leakage probe and the objective values (`references`: the adapter's, e.g. QA examples)."""
    trainer.nested_report = True
    try:
        pred = trainer.predict(dataset, metric_key_prefix=split, references=references)
    finally:
        trainer.nested_report = False
    return split_metrics(pred.metrics or {}, split)


def split_metrics(metrics: dict[str, Any], split: str) -> dict[str, Any]:
    """Trainer metrics as a split report: no `<split>_` prefix, and the flat `group_<name>_<stat>` keys (which
    repeat `per_group`) left out, so the report keeps the table only."""
    metrics = {k.removeprefix(f"{split}_"): v for k, v in metrics.items()}
    flat = {f"group_{g}_{stat}" for g, row in metrics.get("per_group", {}).items() for stat in row}
    return {"split": split, **{k: v for k, v in metrics.items() if k not in flat}}
