"""`evaluate` module: Group fairness metrics: per-group accuracy, F1, TPR, FPR, selection rate; demographic parity, equalized odds, TPR gap RMS.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/group_fairness")`
(`fairtune.metrics.modules.module_path("group_fairness")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = "Group fairness metrics: per-group accuracy, F1, TPR, FPR, selection rate; demographic parity, equalized odds, TPR gap RMS."
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1], groups=["a", "a", "b", "b"])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GroupFairness(evaluate.Metric):
    """Group fairness metrics: per-group accuracy, F1, TPR, FPR, selection rate; demographic parity, equalized odds, TPR gap RMS."""

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _KWARGS_DESCRIPTION,
            {
                "predictions": datasets.Value("int64"),
                "references": datasets.Value("int64"),
                "groups": datasets.Value("string"),
            },
        )

    def _compute(self, predictions, references, groups, labels=None):
        from fairtune.metrics.group import group_fairness_metrics

        return group_fairness_metrics(references, predictions, groups, labels=labels)
