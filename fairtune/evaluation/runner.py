"""Running a set of suites on a model (and optionally a baseline) and writing results.json, report.md and plots."""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairtune.evaluation.base import EvalSettings, SuiteResult, options_from_dict
from fairtune.evaluation.models import LoadedModel, load_model
from fairtune.evaluation.plots import plot_breakdown, plot_headline
from fairtune.evaluation.report import build_results, headline, read_results, render_report, write_results
from fairtune.evaluation.suites import MODEL_OPTIONAL, get_suite

logger = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """One evaluation run.

    Args:
        suites: suite names, run in order.
        output_dir: where results.json, report.md and the PNGs go.
        model: model dir or Hub id (optional for `group`/`subgroup_auc` with a predictions file).
        model_kind: override the kind detected from the config (masked_lm, causal_lm, classifier, qa, token_classifier).
        baseline: a model to evaluate the same way, or a folder with an earlier results.json.
        suite_options: per-suite options (see each suite's `Options`); a `model` key there overrides `model`.
        settings: bootstrap, seed, batch size, progress bars.
    """

    suites: list[str]
    output_dir: str
    model: str | None = None
    model_kind: str | None = None
    baseline: str | None = None
    suite_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: EvalSettings = field(default_factory=EvalSettings)


class _Models:
    """Loads each model once per run."""

    def __init__(self, kind: str | None, seed: int = 0) -> None:
        self.kind = kind
        self.seed = seed
        self.cache: dict[str, LoadedModel] = {}

    def get(self, name: str) -> LoadedModel:
        """The loaded model; weights missing from a checkpoint are initialised from the run's seed."""
        if name not in self.cache:
            import torch

            torch.manual_seed(self.seed)
            self.cache[name] = load_model(name, self.kind)
        return self.cache[name]


def run_suites(model: str | None, config: EvalConfig, models: _Models) -> list[SuiteResult]:
    """Run every suite of `config` against `model`."""
    from fairtune.posthoc.thresholds import load_thresholds

    results = []
    for name in config.suites:
        module = get_suite(name)
        raw = dict(config.suite_options.get(name) or {})
        suite_model = raw.pop("model", None) or model
        options = options_from_dict(module.Options, raw, name)
        needs_model = not (name in MODEL_OPTIONAL and getattr(options, "predictions", None))
        if needs_model and not suite_model:
            raise ValueError(f"suite {name!r} needs a model (--model or recipe key `model`)")
        loaded = models.get(suite_model) if needs_model else None
        kwargs: dict[str, Any] = {}
        if name == "group" and suite_model and Path(suite_model).is_dir():
            kwargs["thresholds"] = load_thresholds(suite_model)
        logger.info("running suite %s on %s", name, suite_model or getattr(options, "predictions", None))
        results.append(module.run(loaded, options, config.settings, **kwargs))
    return results


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Run the suites (and the baseline), write results.json, report.md and plots; return the results payload."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = _Models(config.model_kind, config.settings.seed)
    results = run_suites(config.model, config, models)
    baseline = None
    if config.baseline:
        base_path = Path(config.baseline)
        if (base_path / "results.json").is_file() and not (base_path / "config.json").is_file():
            baseline = read_results(base_path / "results.json")
        else:
            baseline = run_suites(config.baseline, config, models)
    s = config.settings
    meta = {
        "model": config.model,
        "baseline": config.baseline,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "settings": {
            "n_bootstrap": s.n_bootstrap,
            "confidence": s.confidence,
            "seed": s.seed,
            "batch_size": s.batch_size,
        },
        "interval_note": f"{int(s.confidence * 100)}% percentile bootstrap, {s.n_bootstrap} resamples of rows",
    }
    plots: dict[str, str] = {}
    base_by = {r.suite: r for r in baseline or []}
    for r in results:
        p = plot_breakdown(r, out / f"{r.suite}.png", base_by.get(r.suite))
        if p is not None:
            plots[r.suite] = p.name
    if baseline is not None:
        p = plot_headline(headline(results), headline(baseline), out / "summary.png")
        if p is not None:
            plots["summary"] = p.name
    payload = build_results(results, meta, baseline)
    payload["plots"] = sorted(plots.values())
    write_results(out / "results.json", payload)
    (out / "report.md").write_text(render_report(results, meta, baseline, plots), encoding="utf-8")
    return payload
