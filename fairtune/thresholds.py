"""Moved to `fairtune.posthoc.thresholds`; this name stays importable for existing code and notebooks."""

from fairtune.posthoc.thresholds import (  # noqa: F401
    CRITERIA,
    PIPELINE_NOTE,
    THRESHOLDS_FILE,
    apply_thresholds,
    fit_thresholds,
    load_thresholds,
    positive_probabilities,
    predict_with_thresholds,
    save_thresholds,
)
