"""Task adapters: one module per task."""

from fairtune.tasks.base import TaskAdapter, TaskOutputs


def get_adapter(task: str) -> TaskAdapter:
    """The adapter for a task name (`classification`, `ner`, `qa`) with its default settings; the pipeline
    calls `adapter.configured(data_args, label_list)` once the run's labels are known."""
    if task == "classification":
        from fairtune.tasks.classification import ClassificationAdapter

        return ClassificationAdapter()
    if task == "ner":
        from fairtune.tasks.ner import NerAdapter

        return NerAdapter()
    if task == "qa":
        from fairtune.tasks.qa import QaAdapter

        return QaAdapter()
    raise ValueError(f"`task`: unknown task {task!r}; choose classification, ner or qa.")


__all__ = ["TaskAdapter", "TaskOutputs", "get_adapter"]
