"""`evaluate` module: UnQover position error, attribute error, mu and eta (Li et al. 2020) from subject span scores.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/unqover")`
(`fairtune.metrics.modules.module_path("unqover")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = "UnQover position error, attribute error, mu and eta (Li et al. 2020) from subject span scores."
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(subject1=[...], subject2=[...], template=[...], attribute=[...], negated=[...], score1=[...], score2=[...])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Unqover(evaluate.Metric):
    """UnQover position error, attribute error, mu and eta (Li et al. 2020) from subject span scores."""

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _KWARGS_DESCRIPTION,
            {
                "subject1": datasets.Value("string"),
                "subject2": datasets.Value("string"),
                "template": datasets.Value("string"),
                "attribute": datasets.Value("string"),
                "negated": datasets.Value("bool"),
                "score1": datasets.Value("float64"),
                "score2": datasets.Value("float64"),
            },
        )

    def _compute(self, subject1, subject2, template, attribute, negated, score1, score2):
        from fairtune.metrics.unqover import unqover_scores

        keys = ("subject1", "subject2", "template", "attribute", "negated", "score1", "score2")
        rows = zip(subject1, subject2, template, attribute, negated, score1, score2)
        return unqover_scores([dict(zip(keys, r)) for r in rows])
