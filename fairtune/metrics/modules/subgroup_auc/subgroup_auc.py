"""`evaluate` module: Subgroup, BPSN and BNSP AUC per identity term (Borkan et al. 2019) and per-term calibration.

Load offline by path: `evaluate.load("<site-packages>/fairtune/metrics/modules/subgroup_auc")`
(`fairtune.metrics.modules.module_path("subgroup_auc")` gives the path). The math lives in `fairtune.metrics`.
"""

import datasets
import evaluate

from fairtune.metrics.modules import metric_info

_DESCRIPTION = "Subgroup, BPSN and BNSP AUC per identity term (Borkan et al. 2019) and per-term calibration."
_KWARGS_DESCRIPTION = """
Example:
    >>> metric = evaluate.load(path_to_this_folder)
    >>> metric.compute(references=[1, 0, 1, 0], scores=[0.9, 0.2, 0.6, 0.7], subgroups=[["gay"], ["gay"], [], []])
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SubgroupAuc(evaluate.Metric):
    """Subgroup, BPSN and BNSP AUC per identity term (Borkan et al. 2019) and per-term calibration."""

    def _info(self):
        return metric_info(
            _DESCRIPTION,
            _KWARGS_DESCRIPTION,
            {
                "references": datasets.Value("int64"),
                "scores": datasets.Value("float64"),
                "subgroups": datasets.Sequence(datasets.Value("string")),
            },
        )

    def _compute(self, references, scores, subgroups, min_count=1):
        import numpy as np

        from fairtune.metrics.subgroup_auc import subgroup_auc_report

        terms = sorted({t for row in subgroups for t in row})
        members = {t: np.array([t in row for row in subgroups]) for t in terms}
        return subgroup_auc_report(references, scores, members, min_count=min_count)
