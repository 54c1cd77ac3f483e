"""`evaluate` module: BBQ accuracy and ambiguous/disambiguated bias scores (Parrish et al. 2022), overall and per category.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/bbq")`
(`fairtune.metrics.modules.module_path("bbq")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = "BBQ accuracy and ambiguous/disambiguated bias scores (Parrish et al. 2022), overall and per category."
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(predictions=[0, 2], references=[1, 2], biased_answers=[0, 0], unknown_answers=[1, 1], context_conditions=["ambig", "disambig"], categories=["Age", "Age"])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bbq(evaluate.Metric):
    """BBQ accuracy and ambiguous/disambiguated bias scores (Parrish et al. 2022), overall and per category."""

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _KWARGS_DESCRIPTION,
            {
                "predictions": datasets.Value("int64"),
                "references": datasets.Value("int64"),
                "biased_answers": datasets.Value("int64"),
                "unknown_answers": datasets.Value("int64"),
                "context_conditions": datasets.Value("string"),
                "categories": datasets.Value("string"),
            },
        )

    def _compute(self, predictions, references, biased_answers, unknown_answers, context_conditions, categories):
        from fairtune.metrics.bbq import bbq_scores

        return bbq_scores(predictions, references, biased_answers, unknown_answers, context_conditions, categories)
