"""`evaluate` module: CrowS-Pairs score (Nangia et al. 2020): percentage of pairs where the more stereotypical sentence scores higher.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/crows_pairs")`
(`fairtune.metrics.modules.module_path("crows_pairs")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = (
    "CrowS-Pairs score (Nangia et al. 2020): percentage of pairs where the more stereotypical sentence scores higher."
)
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(scores_more=[-10.0, -12.0], scores_less=[-11.0, -11.0], bias_types=["gender", "age"])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CrowsPairs(evaluate.Metric):
    """CrowS-Pairs score (Nangia et al. 2020): percentage of pairs where the more stereotypical sentence scores higher."""

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _KWARGS_DESCRIPTION,
            {
                "scores_more": datasets.Value("float64"),
                "scores_less": datasets.Value("float64"),
                "bias_types": datasets.Value("string"),
            },
        )

    def _compute(self, scores_more, scores_less, bias_types):
        from fairtune.metrics.crows_pairs import crows_pairs_score

        return crows_pairs_score(scores_more, scores_less, bias_types)
