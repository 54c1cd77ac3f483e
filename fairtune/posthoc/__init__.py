"""Post-hoc debiasing of a trained model: concept erasure folded into the head, and per-group decision rules.

- `fairtune.posthoc.erasure`: LEACE (and orthogonal / quadratic) erasure of the group from the representation that
  feeds the task head, folded into the head's first linear layer so the result is a plain transformers model.
- `fairtune.posthoc.thresholds`: per-group thresholds (binary, deterministic or randomized) and per-class offsets
  (multiclass), with `group_probe` for groups inferred from the representation.
"""
