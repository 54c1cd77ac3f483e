"""`evaluate` module: Counterfactual consistency: flip_rate and ctf_gap between predictions on original and attribute-swapped inputs.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/counterfactual_consistency")`
(`fairtune.metrics.modules.module_path("counterfactual_consistency")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = (
    "Counterfactual consistency: flip_rate and ctf_gap between predictions on original and attribute-swapped inputs."
)
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(probs_original=[[0.2, 0.8]], probs_counterfactual=[[0.6, 0.4]])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CounterfactualConsistency(evaluate.Metric):
    """Counterfactual consistency: flip_rate and ctf_gap between predictions on original and attribute-swapped inputs."""

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _KWARGS_DESCRIPTION,
            {
                "probs_original": datasets.Sequence(datasets.Value("float64")),
                "probs_counterfactual": datasets.Sequence(datasets.Value("float64")),
            },
        )

    def _compute(self, probs_original, probs_counterfactual, axes=None):
        from fairtune.metrics.counterfactual import counterfactual_consistency

        return counterfactual_consistency(probs_original, probs_counterfactual, axes)
