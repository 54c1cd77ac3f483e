"""`evaluate` module: Name-substitution NER probe: PERSON recall per name group and ner_name_recall_gap.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/ner_name_recall")`
(`fairtune.metrics.modules.module_path("ner_name_recall")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = "Name-substitution NER probe: PERSON recall per name group and ner_name_recall_gap."
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(recalled=[True, False, True], groups=["a", "a", "b"])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NerNameRecall(evaluate.Metric):
    """Name-substitution NER probe: PERSON recall per name group and ner_name_recall_gap."""

    def _info(self):
        return metric_info(
            _DESCRIPTION, _KWARGS_DESCRIPTION, {"recalled": datasets.Value("bool"), "groups": datasets.Value("string")}
        )

    def _compute(self, recalled, groups):
        from fairtune.metrics.ner_names import ner_name_recall

        return ner_name_recall(recalled, groups)
