"""Building a FairTrainer on tiny in-memory data for tests."""

from __future__ import annotations

from datasets import Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from fairtune.config import DataArguments, FairTrainingArguments
from fairtune.data import encode_datasets
from fairtune.tasks.classification import ClassificationAdapter
from fairtune.trainer import FairTrainer


def build_trainer(model_dir, train_rows, eval_rows=None, output_dir="out", data_kwargs=None, **arg_kwargs):
    """A FairTrainer over rows with `text`, `label` and `gender` columns."""
    defaults = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=1e-3,
        num_train_epochs=1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    defaults.update(arg_kwargs)
    args = FairTrainingArguments(**defaults)
    data_args = DataArguments(group_column="gender", max_length=32, **(data_kwargs or {}))
    raw = DatasetDict({"train": Dataset.from_list(train_rows)})
    if eval_rows is not None:
        raw["validation"] = Dataset.from_list(eval_rows)
    encoded, enc = encode_datasets(raw, data_args, args)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(enc.label_list))
    adapter = ClassificationAdapter()
    processed = {k: adapter.preprocess(v, tok, data_args, k) for k, v in encoded.items()}
    return FairTrainer(
        model=model,
        args=args,
        task_adapter=adapter,
        group_names=enc.group_names,
        label_list=enc.label_list,
        train_dataset=processed["train"],
        eval_dataset=processed.get("validation"),
        processing_class=tok,
        data_collator=adapter.collator(tok),
    )
