"""The accuracy-fairness frontier of each objective family on the demo's controlled-bias biographies.

Each family (soft equalized odds, MinDiff, the gradient-reversal adversary on the representation at constant
strength and with the Ganin ramp, the equalized-odds adversary on the predictions (`adversary_eo`: logits input,
label-conditioned, balanced cells, 5 adversary steps), CDA + counterfactual logit pairing; CDA alone is `cda_clp` at weight 0) is a `fairtune sweep` over its weight
x seeds on the embedded all-MiniLM-L6-v2; the baseline (no objective) is trained in the same run with the same
seeds. Training is gender-biased (90% stereotyped), test is unbiased, so a gender shortcut shows as a TPR gap. The
table gives seed means ± sample std, Pareto membership over all rows and DTO (fairlib) within each family and its
baseline. Runs are resumable: re-running reuses finished runs in --output.

    python bench/bench_frontier.py                       # ~3 min per run on 2 busy CPU cores (CDA: ~5)
    python bench/bench_frontier.py --families eo,adversary --n-train 1200 --seeds 42,43,44
    python bench/bench_frontier.py --weights adversary=0.1,0.3 --output outputs/bench_frontier
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# family -> (weight field, default weights, extra recipe flags)
FAMILIES: dict[str, tuple[str, list[str], list[str]]] = {
    "eo": ("eo_weight", ["1", "3"], []),
    "adversary": ("adversary_weight", ["0.3", "1", "3"], []),
    "adversary_ganin": ("adversary_weight", ["1", "3"], ["--adversary_schedule", "ganin"]),
    # Zhang et al. 2018: on the predicted log-probabilities, per true class, (label, group) cells balanced, 5
    # adversary updates per model update (recipes/classification/minilm-demo-adversary.yaml)
    "adversary_eo": (
        "adversary_weight",
        ["0.5", "1", "2"],
        "--adversary_input logits --adversary_label_conditioned true --adversary_balance true --adversary_steps 5".split(),
    ),
    "mindiff": ("mindiff_weight", ["0.1", "1"], []),
    "cda_clp": ("clp_weight", ["0", "1"], ["--cda", "two_sided", "--cda_axes", "gender,names"]),
}
METRICS = ("accuracy", "tpr_gap_rms", "equalized_odds_difference", "demographic_parity_difference")
EXTRA = ("leakage_probe_accuracy", "flip_rate")


def common_flags(args: argparse.Namespace) -> list[str]:
    """The demo recipe (`fairtune demo`'s COMMON) as flags, at the bench's size."""
    from fairtune.cli.demo import COMMON

    flags: list[str] = []
    for k, v in COMMON.items():
        if k in ("seed", "logging_steps"):
            continue
        flags += [f"--{k}", ",".join(v) if isinstance(v, list) else str(v)]
    flags += ["--max_train_samples", str(args.n_train), "--max_eval_samples", str(args.n_eval)]
    flags += ["--num_train_epochs", str(args.epochs), "--logging_steps", "1000", "--disable_tqdm", "true"]
    flags += ["--save_strategy", "no", "--use_cpu", "true"]
    return flags


def _cell(c: dict[str, Any], key: str) -> str:
    m, s = c.get("mean", {}).get(key), c.get("std", {}).get(key)
    return "n/a" if m is None else f"{m:.3f}±{s:.3f}"


def frontier_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: family, weight, metrics as mean±std over seeds, global Pareto, DTO within the family."""
    from fairtune.selection import pareto_front

    ready = [r for r in rows if r["n"] and "accuracy" in r["mean"] and "tpr_gap_rms" in r["mean"]]
    front = pareto_front([r["mean"]["accuracy"] for r in ready], [r["mean"]["tpr_gap_rms"] for r in ready])
    on = {id(r) for r, f in zip(ready, front) if f}
    head = ["family", "weight", "seeds", *METRICS, *EXTRA, "Pareto (all)", "DTO (family)", "s/run"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = [r["family"], r["weight"], str(r["n"])]
        cells += [_cell(r, k) for k in (*METRICS, *EXTRA)]
        cells += ["yes" if id(r) in on else "", f"{r['dto']:.3f}" if math.isfinite(r.get("dto", math.nan)) else ""]
        cells.append(f"{r['seconds']:.0f}" if r.get("seconds") else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _family_rows(family: str, baseline: list[dict], summary: dict) -> list[dict]:
    """This family's configurations plus the baseline, with DTO computed over them together."""
    from fairtune.selection import dto, fairness_scores

    rows = [dict(c, family=family, weight=next(iter(c["params"].values()))) for c in summary["configs"]]
    for r, run_secs in zip(rows, _seconds(summary)):
        r["seconds"] = run_secs
    group = [*(dict(b) for b in baseline), *rows]
    ok = [r for r in group if r["n"] and "accuracy" in r["mean"] and "tpr_gap_rms" in r["mean"]]
    scores = dto(
        [r["mean"]["accuracy"] for r in ok], fairness_scores([r["mean"]["tpr_gap_rms"] for r in ok], "tpr_gap_rms")
    )
    for r, d in zip(ok, scores):
        r["dto"] = d
    return rows


def _seconds(summary: dict) -> list[float | None]:
    out = []
    for c in summary["configs"]:
        secs = [r["seconds"] for r in summary["runs"] if r["config"] == c["name"] and r.get("seconds")]
        out.append(sum(secs) / len(secs) if secs else None)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the baseline and every family's sweep, then print the frontier table."""
    from fairtune.sweep import run_sweep

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(FAMILIES), help=f"subset of {', '.join(FAMILIES)}")
    p.add_argument("--weights", action="append", default=[], metavar="FAMILY=W1,W2", help="override a family's grid")
    p.add_argument("--seeds", default="42,43", help="seed list (or a count from 42)")
    p.add_argument("--n-train", type=int, default=600, help="training rows (the demo has 1200)")
    p.add_argument("--n-eval", type=int, default=200, help="validation/test rows")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--output", default="outputs/bench_frontier")
    args = p.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        p.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    custom = dict(w.split("=", 1) for w in args.weights)
    out = Path(args.output)
    flags = common_flags(args)
    seeds = args.seeds if "," in args.seeds else ",".join(str(42 + i) for i in range(int(args.seeds)))
    quiet = os.environ.get("FAIRTUNE_BENCH_VERBOSE") is None
    if quiet:
        import transformers

        transformers.logging.set_verbosity_error()
    start = time.perf_counter()
    base = run_sweep(None, {}, seeds, flags, out / "baseline", "dto")
    baseline = [dict(c, family="baseline", weight="0", dto=math.nan) for c in base["configs"]]
    for r, s in zip(baseline, _seconds(base)):
        r["seconds"] = s
    rows = list(baseline)
    for family in families:
        key, weights, extra = FAMILIES[family]
        grid = {key: custom[family].split(",") if family in custom else weights}
        summary = run_sweep(None, grid, seeds, [*flags, *extra], out / family, "dto")
        fam = _family_rows(family, baseline, summary)
        rows += fam
        print(f"\n== {family} ({key}) ==\n{frontier_table([*baseline, *fam])}", flush=True)
    table = frontier_table(rows)
    print(
        f"\nAccuracy-fairness frontier on the demo (train {args.n_train} rows, 90% gender-stereotyped; test "
        f"{args.n_eval} unbiased rows; {args.epochs:g} epochs; seeds {seeds}; mean±std over seeds). DTO: fairlib's "
        "distance to the utopia point of (accuracy, 1 - tpr_gap_rms) within each family and the baseline.\n"
    )
    print(table)
    (out / "frontier.md").write_text(table + "\n")
    print(f"\n({time.perf_counter() - start:.0f} s; runs and per-family sweep.md/frontier.png under {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
