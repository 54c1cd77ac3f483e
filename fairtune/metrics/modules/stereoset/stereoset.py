"""`evaluate` module: StereoSet intrasentence ss, lms and icat (Nadeem et al. 2021), macro-averaged over target terms.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/stereoset")`
(`fairtune.metrics.modules.module_path("stereoset")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = "StereoSet intrasentence ss, lms and icat (Nadeem et al. 2021), macro-averaged over target terms."
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(score_stereotype=[0.3], score_anti_stereotype=[0.2], score_unrelated=[0.1], targets=["nurse"], bias_types=["profession"])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Stereoset(evaluate.Metric):
    """StereoSet intrasentence ss, lms and icat (Nadeem et al. 2021), macro-averaged over target terms."""

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _KWARGS_DESCRIPTION,
            {
                "score_stereotype": datasets.Value("float64"),
                "score_anti_stereotype": datasets.Value("float64"),
                "score_unrelated": datasets.Value("float64"),
                "targets": datasets.Value("string"),
                "bias_types": datasets.Value("string"),
            },
        )

    def _compute(self, score_stereotype, score_anti_stereotype, score_unrelated, targets, bias_types):
        from fairtune.metrics.stereoset import stereoset_scores

        return stereoset_scores(score_stereotype, score_anti_stereotype, score_unrelated, targets, bias_types)
