"""`fairtune sweep`: one recipe over a grid of weights x seeds, the accuracy-fairness frontier and model selection.

Each run is a normal `fairtune train` run in its own output directory (`OUTPUT/<key>-<value>__seed-<n>/`), so the
chosen one can go straight to `fairtune card` and `fairtune push`. Runs execute sequentially in this process
(`--launcher local`) or as separate `accelerate launch -m fairtune train` jobs (`--launcher accelerate`). A run
whose `fairness_report.json` exists (with the same grid values and seed) is not run again: an interrupted sweep
resumes where it stopped. The sweep writes `sweep.json` (every run and every configuration with means and seed
spread), `sweep.md` (the table and the selection) and `frontier.png` (task metric against fairness gap, means with
the seed spread as error bars, Pareto points marked).

Selection is over configurations (seed means): `--select dto` (fairlib's distance to the utopia point, see
`fairtune.selection`) or `--select "tpr_gap_rms<=0.05"` (best task metric among configurations whose mean meets the
constraint). The chosen run is the seed of the chosen configuration closest to the configuration's mean (among
those seeds that meet the constraint themselves): the representative model, not the luckiest seed.

`run_search` (`fairtune sweep --search optuna --trials N --space eo_weight=log:0.01:10`) replaces the grid by a
multi-objective Optuna study (task metric up, fairness gap down; TPE, NSGA-II or random sampling). Each trial is one
configuration trained over the seeds in the same run directories, so the outputs and the selection are the grid's.
The study is stored in SQLite in the output directory by default (an interrupted search resumes: finished trials
count, finished runs are not re-run); `--storage` takes an Optuna RDB URL that several workers share.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import re
import shlex
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fairtune.selection import (
    Criterion,
    NoQualifyingRunError,
    dto,
    fairness_scores,
    higher_is_better,
    pareto_front,
    parse_criterion,
    select,
)

REPORT = "fairness_report.json"
TABLE_METRICS = (
    "macro_f1",
    "equalized_odds_difference",
    "demographic_parity_difference",
    "flip_rate",
    "leakage_probe_accuracy",
)
_RESERVED = ("seed", "output_dir")

logger = logging.getLogger(__name__)


# ---- planning ----------------------------------------------------------------------------------------------------
def split_values(text: str) -> list[str]:
    """Split `a,b,[c,d]` on commas outside brackets; a bracketed value is a list (`[c,d]` -> `c,d`)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced `]` in grid values {text!r}.")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if depth:
        raise ValueError(f"unbalanced `[` in grid values {text!r}.")
    out.append(cur.strip())
    if any(v == "" for v in out):
        raise ValueError(f"empty value in grid values {text!r}; write KEY=V1,V2,...")
    return [v[1:-1].strip() if v.startswith("[") and v.endswith("]") else v for v in out]


def parse_grid(specs: list[str] | None) -> dict[str, list[str]]:
    """`["eo_weight=0.5,1", "learning_rate=1e-4,5e-5"]` -> {"eo_weight": ["0.5", "1"], ...} (values stay strings)."""
    grid: dict[str, list[str]] = {}
    for spec in specs or []:
        key, eq, values = spec.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not eq or not key or not values.strip():
            raise ValueError(f"--grid {spec!r}: write KEY=V1,V2,... (e.g. --grid eo_weight=0,0.5,1).")
        if key in _RESERVED:
            hint = "use --seeds" if key == "seed" else "use --output (each run gets its own directory)"
            raise ValueError(f"--grid {key}: the sweep sets `{key}` itself; {hint}.")
        if key in grid:
            raise ValueError(f"--grid {key} given twice; put all its values in one --grid {key}=V1,V2,...")
        vals = split_values(values)
        if len(set(vals)) != len(vals):
            raise ValueError(f"--grid {spec!r}: repeated values.")
        grid[key] = vals
    return grid


def parse_seeds(text: str | int | list[int] | tuple[int, ...] | None, base_seed: int) -> list[int]:
    """`N` -> N seeds from the recipe's seed upwards; `a,b,c` or a list of ints -> exactly those seeds."""
    if isinstance(text, (list, tuple)):
        text = ",".join(str(int(s)) for s in text) + ("," if len(text) == 1 else "")
    text = str(text if text is not None else 1).strip()
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            n = int(text)
            if n < 1:
                raise ValueError
            seeds = [base_seed + i for i in range(n)]
    except ValueError:
        raise ValueError(
            f"--seeds {text!r}: give a positive count (e.g. 3) or a list of seeds (e.g. 1,2,3)."
        ) from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: repeated seeds.")
    return seeds


def _slug(value: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", value).strip("_") or "x"


@dataclass
class Run:
    """One training run of the sweep: its grid values, seed, directory and (once done) its metrics."""

    name: str
    config: str
    params: dict[str, str]
    seed: int
    output_dir: Path
    status: str = "pending"
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None
    command: str = ""
    posthoc: str | None = None  # a post-hoc row: the method applied to the base run in `base_dir`
    base_dir: Path | None = None

    def tokens(self, overrides: list[str]) -> list[str]:
        """The `fairtune train` override flags of this run (user overrides, then grid values, seed, output_dir).

        A post-hoc row trains as its base run; erasure rows add `--erasure METHOD`, which gives the same model."""
        out = list(overrides)
        for k, v in self.params.items():
            out += [f"--{k}", v]
        if self.posthoc in ("leace", "orth"):
            out += ["--erasure", self.posthoc]
        return [*out, "--seed", str(self.seed), "--output_dir", str(self.base_dir or self.output_dir)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view for sweep.json."""
        return {
            "name": self.name,
            "config": self.config,
            "params": self.params,
            "seed": self.seed,
            "output_dir": str(self.output_dir),
            "status": self.status,
            "seconds": self.seconds,
            "error": self.error,
            "command": self.command,
            "metrics": self.metrics,
            **({"posthoc": self.posthoc, "base_dir": str(self.base_dir)} if self.posthoc else {}),
        }


def config_name(params: dict[str, str]) -> str:
    """`eo_weight=0.5 lr=1e-4` style label of a grid point (`base` for an empty grid)."""
    return " ".join(f"{k}={v}" for k, v in params.items()) or "base"


def plan_runs(grid: dict[str, list[str]], seeds: list[int], output: Path) -> list[Run]:
    """The grid's cartesian product x seeds, grid-major (all seeds of a configuration together)."""
    import itertools

    keys = list(grid)
    runs = []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        params = dict(zip(keys, combo))
        for seed in seeds:
            parts = [f"{k}-{_slug(v)}" for k, v in params.items()] + [f"seed-{seed}"]
            name = "__".join(parts)
            runs.append(Run(name, config_name(params), params, seed, output / name))
    return runs


def _train_command(recipe: str | None, tokens: list[str]) -> str:
    """The `fairtune train` command of one run, as written to sweep.json (token values redacted)."""
    from fairtune.cards.secrets import redact_command

    argv = ["fairtune", "train", *([recipe] if recipe else []), *tokens]
    return " ".join(shlex.quote(a) for a in redact_command(argv))


# ---- running -----------------------------------------------------------------------------------------------------
def _report_path(run: Run) -> Path:
    return run.output_dir / REPORT


def read_metrics(report_file: Path) -> dict[str, float]:
    """The numeric top-level metrics of a `fairness_report.json`."""
    data = json.loads(report_file.read_text())
    return {
        k: float(v)
        for k, v in data.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def _is_current(run: Run, expected: dict[str, Any]) -> bool:
    """Whether a finished run's saved config agrees with every field this run's recipe and flags set."""
    saved_file = run.output_dir / "fairtune_config.json"
    if not saved_file.is_file():
        return True  # a report without a config: trust the directory name
    saved = json.loads(saved_file.read_text())
    return all(_same_value(saved.get(k), v) for k, v in expected.items() if k in saved)


def _same_value(saved: Any, expected: Any) -> bool:
    """Saved and expected settings agree; numbers by value (`5` saved by one version, `5.0` parsed by another)."""
    if str(saved) == str(expected):
        return True
    numbers = (int, float)
    if isinstance(saved, numbers) and isinstance(expected, numbers) and not isinstance(saved, bool):
        return not isinstance(expected, bool) and float(saved) == float(expected)
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_command(
    recipe: str | None, tokens: list[str], num_processes: int = 1, config_file: str | None = None
) -> list[str]:
    """`accelerate launch ... -m fairtune train RECIPE TOKENS` for one run."""
    exe = Path(sys.executable).parent / "accelerate"
    cmd = [str(exe) if exe.exists() else "accelerate", "launch"]
    if config_file:
        cmd += ["--config_file", config_file]
    else:
        cmd += ["--num_processes", str(num_processes), "--num_machines", "1", "--mixed_precision", "no"]
        cmd += ["--dynamo_backend", "no"]
        if num_processes > 1:
            cmd += ["--multi_gpu"]  # torchrun-style processes; on CPU pass `--use_cpu true` (gloo)
    cmd += ["--main_process_port", str(_free_port())]
    return [*cmd, "-m", "fairtune", "train", *([recipe] if recipe else []), *tokens]


def _run_local(recipe: str | None, tokens: list[str], command: str) -> None:
    from fairtune.parser import parse_config
    from fairtune.pipeline import run_training

    run_training(*parse_config(recipe, tokens), command=command)


def _run_accelerate(cmd: list[str], log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = log_file.read_text()[-2000:]
        raise RuntimeError(f"`accelerate launch` exited with {proc.returncode}; see {log_file}:\n{tail}")


# ---- aggregation ---------------------------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def aggregate(runs: list[Run]) -> list[dict[str, Any]]:
    """One entry per configuration: its finished runs, and per metric the seed mean, sample std, min and max."""
    configs: dict[str, dict[str, Any]] = {}
    for run in runs:
        entry = configs.setdefault(run.config, {"name": run.config, "params": run.params, "runs": [], "failed": []})
        (entry["runs"] if run.status == "done" else entry["failed"]).append(run.name)
    by_name = {r.name: r for r in runs}
    for entry in configs.values():
        done = [by_name[n] for n in entry["runs"]]
        entry["n"] = len(done)
        keys = sorted({k for r in done for k in r.metrics if all(k in o.metrics for o in done)})
        stats = {k: _mean_std([r.metrics[k] for r in done]) for k in keys}
        entry["mean"] = {k: m for k, (m, _) in stats.items()}
        entry["std"] = {k: s for k, (_, s) in stats.items()}
        entry["min"] = {k: min(r.metrics[k] for r in done) for k in keys}
        entry["max"] = {k: max(r.metrics[k] for r in done) for k in keys}
    return list(configs.values())


def _representative(runs: list[Run], mean: dict[str, float], crit: Criterion) -> Run:
    """The run closest to its configuration's mean in (task metric, fairness metric), preferring runs that meet
    the constraints themselves."""
    keys = [k for k in (crit.performance, crit.fairness) if k]
    ok = [r for r in runs if all(c.satisfied(r.metrics) for c in crit.constraints)] or runs

    def dist(r: Run) -> float:
        return round(math.hypot(*[r.metrics.get(k, math.inf) - mean.get(k, 0.0) for k in keys]), 9)  # ties: seed

    return min(ok, key=lambda r: (dist(r), r.seed))


def analyse(runs: list[Run], criterion: Criterion) -> dict[str, Any]:
    """Configurations with seed statistics, Pareto flags, DTO and the selection (or why none was made)."""
    configs = aggregate(runs)
    ready = [c for c in configs if c["n"] > 0]
    result: dict[str, Any] = {"configs": configs, "selection": None}
    if not ready:
        result["selection"] = {"error": "no run finished; nothing to select."}
        return result
    try:
        crit = criterion.resolve(ready[0]["mean"])
    except ValueError as err:
        result["selection"] = {"error": str(err)}
        return result
    result["performance_metric"], result["fairness_metric"] = crit.performance, crit.fairness
    if crit.fairness:
        perf = [c["mean"].get(crit.performance, math.nan) for c in ready]
        gaps = [c["mean"].get(crit.fairness, math.nan) for c in ready]
        lower = not higher_is_better(crit.fairness)
        front = pareto_front(perf, gaps if lower else [-g for g in gaps])
        scale = 100.0 if any(abs(v) > 1 for v in perf + gaps if math.isfinite(v)) else 1.0
        dtos = dto(perf, fairness_scores(gaps, crit.fairness, scale=scale))
        for c, p, d in zip(ready, front, dtos):
            c["pareto"], c["dto"] = p, d
    try:
        chosen = select([c["mean"] for c in ready], crit)
    except NoQualifyingRunError as err:
        result["selection"] = {"error": str(err), "criterion": crit.describe()}
        return result
    except ValueError as err:
        result["selection"] = {"error": str(err)}
        return result
    for c, q in zip(ready, chosen.qualifying):
        c["meets_constraints"] = q
    config = ready[chosen.index]
    by_name = {r.name: r for r in runs}
    run = _representative([by_name[n] for n in config["runs"]], config["mean"], crit)
    result["selection"] = {
        "criterion": crit.describe(),
        "config": config["name"],
        "params": config["params"],
        "run": run.name,
        "seed": run.seed,
        "output_dir": str(run.output_dir),
        "command": run.command,
        "reason": chosen.message,
        "utopia": chosen.utopia,
        "metrics": run.metrics,
    }
    if run.posthoc:
        result["selection"]["posthoc"] = run.posthoc
        result["selection"]["base_output_dir"] = str(run.base_dir)
        result["selection"]["posthoc_note"] = (
            f"the model in {run.base_dir} with the per-group rules in {run.output_dir / 'fairtune_thresholds.json'} "
            "(they need each input's group; apply with fairtune.posthoc.thresholds.predict_with_thresholds)"
            if run.posthoc == "thresholds"
            else f"the erased model in {run.output_dir} (or train the recipe below: it sets `erasure`)"
        )
    return result


# ---- writing -------------------------------------------------------------------------------------------------------
def _fmt(mean: float | None, std: float | None = None) -> str:
    if mean is None or not math.isfinite(mean):
        return "n/a"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def render_markdown(summary: dict[str, Any]) -> str:
    """sweep.md: settings, the configuration table (means ± seed std), the selection and the runs."""
    perf, fair = summary.get("performance_metric"), summary.get("fairness_metric")
    sel = summary.get("selection") or {}
    metrics = [m for m in (perf, fair, *TABLE_METRICS) if m]
    metrics = list(dict.fromkeys(metrics))
    lines = ["# fairtune sweep", ""]
    lines.append(f"Recipe: `{summary.get('recipe') or '(flags only)'}`; overrides: `{' '.join(summary['overrides'])}`")
    search = summary.get("search")
    if search:
        done = [t for t in search["trials"] if t["state"] == "COMPLETE"]
        lines.append(
            f"Search: Optuna ({search['sampler']} sampler, directions {search['directions']}) over "
            f"`{' '.join(summary['grid'].values())}`; {len(done)} complete trials of {len(search['trials'])}; study "
            f"`{search['study_name']}` in `{search['storage']}`; seeds: {summary['seeds']}."
        )
        lines += [
            "",
            "| trial | state | parameters | task metric | fairness gap | Pareto (study) |",
            "|---|---|---|---|---|---|",
        ]
        for t in search["trials"]:
            vals = t["values"] or [None, None]
            star = "yes" if t["number"] in search["pareto_trials"] else ""
            lines.append(f"| {t['number']} | {t['state']} | `{config_name(t['params'])}` | {_fmt(vals[0])} | "
                         f"{_fmt(vals[1])} | {star} |")  # fmt: skip
    else:
        lines.append(f"Grid: `{summary['grid']}`; seeds: {summary['seeds']}; launcher: {summary['launcher']}.")
    lines += ["", f"Selection: {sel.get('criterion', summary.get('select'))}.", ""]
    head = ["configuration", "runs", *metrics, "DTO", "Pareto", "selected"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for c in summary["configs"]:
        cells = [f"`{c['name']}`", f"{c['n']}" + (f" ({len(c['failed'])} failed)" if c["failed"] else "")]
        cells += [_fmt(c.get("mean", {}).get(m), c.get("std", {}).get(m)) for m in metrics]
        cells.append(_fmt(c.get("dto")))
        cells.append("yes" if c.get("pareto") else "")
        cells.append("**yes**" if sel.get("config") == c["name"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Means ± sample standard deviation over seeds. Pareto: no other configuration has at least the same "
        f"{perf} and at most the same {fair}, one of them strictly. DTO (fairlib): distance of "
        f"({perf}/best {perf}, (1 - {fair})/(1 - best {fair})) to (1, 1) over these configurations; smaller is "
        "better (gaps in percent use 100 - gap).",
        "",
    ]
    if sel.get("error"):
        lines += ["## No selection", "", sel["error"], ""]
    elif sel:
        # a thresholds row's directory holds the rules only: the model (and its card) is the base run's
        d = sel["base_output_dir"] if sel.get("posthoc") == "thresholds" else sel["output_dir"]
        lines += [
            "## Selected",
            "",
            f"Configuration `{sel['config']}` ({sel['reason']}); run `{sel['run']}` (seed {sel['seed']}, the seed "
            "closest to the configuration mean).",
            "",
            f"- model directory: `{d}`",
            f"- recipe: `{summary['output']}/selected_recipe.yaml`",
            f"- reproduce: `{sel['command']}`",
            f"- model card: `fairtune card --model-dir {d}`",
            f"- push: `fairtune push --model-dir {d} --repo-id ORG/NAME`",
            *([f"- post-hoc ({sel['posthoc']}): {sel['posthoc_note']}"] if sel.get("posthoc") else []),
            "",
        ]
    lines += ["![accuracy-fairness frontier](frontier.png)", "", "## Runs", ""]
    lines += [f"| run | seed | status | {perf} | {fair} | seconds |", "|---|---|---|---|---|---|"]
    for r in summary["runs"]:
        m = r["metrics"]
        secs = f"{r['seconds']:.0f}" if r.get("seconds") is not None else ""
        status = r["status"] + (f": {r['error'].splitlines()[0][:80]}" if r.get("error") else "")
        lines.append(
            f"| `{r['name']}` | {r['seed']} | {status} | {_fmt(m.get(perf))} | {_fmt(m.get(fair))} | {secs} |"
        )
    return "\n".join(lines) + "\n"


def _clipped_spread(config: dict[str, Any], metric: str) -> list[list[float]]:
    """Error bar of one configuration: the seed std, clipped to the seeds' own range (a gap never drawn below 0)."""
    mean, std = config["mean"][metric], config["std"].get(metric) or 0.0
    lo, hi = config.get("min", {}).get(metric, mean - std), config.get("max", {}).get(metric, mean + std)
    return [[max(0.0, min(std, mean - lo))], [max(0.0, min(std, hi - mean))]]


def plot_frontier(summary: dict[str, Any], path: Path) -> Path | None:
    """Task metric against fairness gap: seed runs as dots, configuration means with std error bars, Pareto marked."""
    perf, fair = summary.get("performance_metric"), summary.get("fairness_metric")
    ready = [c for c in summary["configs"] if c["n"] and perf in c["mean"] and fair in c["mean"]]
    if not ready:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = (summary.get("selection") or {}).get("config")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    runs = [r for r in summary["runs"] if r["status"] == "done" and perf in r["metrics"] and fair in r["metrics"]]
    ax.scatter([r["metrics"][fair] for r in runs], [r["metrics"][perf] for r in runs], s=10, c="0.6", label="runs")
    labels: dict[tuple[float, float], list[str]] = {}
    for c in ready:
        on = bool(c.get("pareto"))
        x, y = c["mean"][fair], c["mean"][perf]
        ax.errorbar(
            x,
            y,
            xerr=_clipped_spread(c, fair),
            yerr=_clipped_spread(c, perf),
            fmt="o" if on else "s",
            color="tab:red" if on else "tab:blue",
            mfc="tab:red" if on else "none",
            capsize=3,
        )
        labels.setdefault((round(x, 3), round(y, 3)), []).append(c["name"])
        if c["name"] == sel:
            ax.scatter([x], [y], s=260, facecolors="none", edgecolors="k", lw=1.5)
    for (x, y), names in labels.items():  # configurations at the same point share one label
        ax.annotate("; ".join(names), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    front = sorted((c for c in ready if c.get("pareto")), key=lambda c: c["mean"][fair])
    if len(front) > 1:
        ax.plot([c["mean"][fair] for c in front], [c["mean"][perf] for c in front], "--", c="tab:red", lw=1)
    ax.plot([], [], "o", c="tab:red", label="Pareto (mean ± std within seed range)")
    ax.plot([], [], "s", mfc="none", c="tab:blue", label="dominated")
    if sel:
        ax.scatter([], [], s=120, facecolors="none", edgecolors="k", label="selected")
    ax.set_xlabel(f"{fair} (lower is fairer)" if not higher_is_better(fair) else fair)
    ax.set_ylabel(perf)
    ax.set_title("Accuracy-fairness frontier")
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def selected_recipe(recipe: str | None, tokens: list[str]) -> dict[str, Any]:
    """The flat recipe of one run: the YAML recipe updated with its typed override flags."""
    from fairtune.parser import load_recipe, typed_flags

    values = load_recipe(recipe)
    values.update(typed_flags(tokens))
    return values


def write_outputs(summary: dict[str, Any], output: Path) -> None:
    """sweep.json, sweep.md, frontier.png and (after a selection) selected_recipe.yaml."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "sweep.json").write_text(json.dumps(summary, indent=2, default=str))
    plot_frontier(summary, output / "frontier.png")
    (output / "sweep.md").write_text(render_markdown(summary))
    recipe = (summary.get("selection") or {}).get("recipe")
    if recipe:
        (output / "selected_recipe.yaml").write_text(
            "# The run chosen by `fairtune sweep` (" + summary["selection"]["criterion"] + ")\n"
            + yaml.safe_dump(recipe, sort_keys=False)
        )  # fmt: skip


# ---- the sweep -----------------------------------------------------------------------------------------------------
def _check_launcher(launcher: str, num_processes: int, accelerate_config: str | None) -> None:
    if launcher not in ("local", "accelerate"):
        raise ValueError(f"--launcher {launcher!r}: choose local or accelerate.")
    if num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {num_processes}.")
    if launcher == "local" and (num_processes > 1 or accelerate_config):
        raise ValueError("--num-processes/--accelerate-config need `--launcher accelerate`.")


def _expected_fields(recipe: str | None, runs: list[Run], overrides: list[str]) -> dict[str, dict[str, Any]]:
    """Every field the recipe and flags set, per run (parsing each run's configuration before anything trains)."""
    from fairtune.parser import config_to_dict, parse_config

    expected: dict[str, dict[str, Any]] = {}
    for run in runs:
        cfg = config_to_dict(*parse_config(recipe, run.tokens(overrides)))
        chosen = [k for k in selected_recipe(recipe, run.tokens(overrides)) if k != "output_dir"]
        expected[run.name] = {k: cfg.get(k) for k in chosen}
        run.command = _train_command(recipe, run.tokens(overrides))
    return expected


def _execute(
    run: Run,
    tag: str,
    recipe: str | None,
    overrides: list[str],
    expected: dict[str, Any],
    launcher: str,
    num_processes: int,
    accelerate_config: str | None,
    log,
) -> None:
    """Train one run unless its report exists with the same settings; record status, metrics, seconds, errors."""
    if _report_path(run).is_file():
        if _is_current(run, expected):
            run.status, run.metrics = "done", read_metrics(_report_path(run))
            log(f"{tag}: already done ({run.output_dir}), not re-run")
            return
        log(f"{tag}: {run.output_dir} was trained with other settings; training again")
    log(f"{tag}: training -> {run.output_dir}")
    start = time.perf_counter()
    try:
        if launcher == "local":
            _run_local(recipe, run.tokens(overrides), run.command)
        else:
            cmd = accelerate_command(recipe, run.tokens(overrides), num_processes, accelerate_config)
            _run_accelerate(cmd, run.output_dir / "train.log")
        run.metrics = read_metrics(_report_path(run))
        run.status = "done"
    except Exception as err:  # one failed run must not lose the others
        run.status, run.error = "failed", f"{type(err).__name__}: {err}"
        run.output_dir.mkdir(parents=True, exist_ok=True)
        (run.output_dir / "sweep_error.txt").write_text(traceback.format_exc())
        log(f"{tag}: FAILED ({run.error.splitlines()[0]}); traceback in {run.output_dir / 'sweep_error.txt'}")
    run.seconds = time.perf_counter() - start
    gc.collect()
    if run.status == "done":
        shown = ", ".join(f"{k} {v:.4f}" for k, v in run.metrics.items() if k in ("accuracy", "tpr_gap_rms"))
        log(f"{tag}: done in {run.seconds:.0f} s ({shown})")


def _finish(summary: dict[str, Any], runs: list[Run], criterion: Criterion, recipe, overrides, output: Path) -> None:
    summary.update(analyse(runs, criterion))
    summary["runs"] = [r.to_dict() for r in runs]
    sel = summary["selection"]
    if sel and not sel.get("error"):
        run = next(r for r in runs if r.name == sel["run"])
        sel["recipe"] = selected_recipe(recipe, run.tokens(overrides))
    write_outputs(summary, output)


def run_sweep(
    recipe: str | None,
    grid: dict[str, list[str]],
    seeds: str | int | list[int] | None = 1,
    overrides: list[str] | None = None,
    output: str | Path = "outputs/sweep",
    select_criterion: str | None = "dto",
    launcher: str = "local",
    num_processes: int = 1,
    accelerate_config: str | None = None,
    task_metric: str | None = None,
    fairness_metric: str | None = None,
    log: Callable[[str], None] | None = None,
    posthoc: str | list[str] | None = None,
    posthoc_criterion: str = "equalized_odds",
) -> dict[str, Any]:
    """Run (or resume) the sweep, then write and return the summary; raises ValueError on a bad configuration.
    Progress lines go to `log` (the CLI prints them; by default they are logged). `posthoc` (`thresholds`,
    `leace`, `orth`) adds, beside every run, the row of that post-hoc fix applied to it (`fairtune.posthoc_runs`)."""
    log = log or logger.info
    from fairtune.parser import parse_config
    from fairtune.posthoc_runs import THRESHOLD_CRITERIA, parse_posthoc

    methods = parse_posthoc(posthoc)
    if posthoc_criterion not in THRESHOLD_CRITERIA:
        raise ValueError(f"--posthoc-criterion: choose one of {', '.join(THRESHOLD_CRITERIA)}.")
    overrides = list(overrides or [])
    output = Path(output)
    criterion = parse_criterion(select_criterion, task_metric, fairness_metric)
    _check_launcher(launcher, num_processes, accelerate_config)
    base = parse_config(recipe, overrides)[2]
    runs = plan_runs(grid, parse_seeds(seeds, base.seed), output)
    expected = _expected_fields(recipe, runs, overrides)  # every run is checked before the first one trains
    summary: dict[str, Any] = {
        "recipe": recipe,
        "overrides": overrides,
        "grid": grid,
        "seeds": sorted({r.seed for r in runs}),
        "select": select_criterion or "dto",
        "launcher": launcher,
        "num_processes": num_processes,
        "output": str(output),
        **({"posthoc": methods, "posthoc_criterion": posthoc_criterion} if methods else {}),
    }
    output.mkdir(parents=True, exist_ok=True)
    derived: list[Run] = []
    for i, run in enumerate(runs, 1):
        tag = f"[sweep {i}/{len(runs)}] {run.config} seed={run.seed}"
        _execute(run, tag, recipe, overrides, expected[run.name], launcher, num_processes, accelerate_config, log)
        for method in methods:
            derived.append(_posthoc_run(run, method, recipe, overrides, posthoc_criterion, f"{tag} + {method}", log))
        summary["runs"] = [r.to_dict() for r in runs + derived]
        (output / "sweep.json").write_text(json.dumps(summary, indent=2, default=str))  # progress
    _finish(summary, runs + derived, criterion, recipe, overrides, output)
    return summary


def _posthoc_run(
    run: Run, method: str, recipe: str | None, overrides: list[str], criterion: str, tag: str, log
) -> Run:
    """The row of a post-hoc fix applied to a finished run (computed once; reused while the run is unchanged)."""
    from fairtune.parser import parse_config
    from fairtune.posthoc_runs import cached_report, posthoc_report, report_dir

    row = Run(
        f"{run.name}+{method}",
        f"{run.config} + {method}",
        run.params,
        run.seed,
        report_dir(run.output_dir, method),
        posthoc=method,
        base_dir=run.output_dir,
    )
    row.command = run.command + (f" --erasure {method}" if method != "thresholds" else "")
    if run.status != "done":
        row.status, row.error = "failed", f"its base run {run.name} did not finish"
        return row
    if cached_report(run.output_dir, method, criterion) is not None:
        row.status, row.metrics = "done", read_metrics(_report_path(row))
        log(f"{tag}: already done ({row.output_dir}), not re-run")
        return row
    start = time.perf_counter()
    try:
        posthoc_report(*parse_config(recipe, run.tokens(overrides)), method, criterion=criterion)
        row.status, row.metrics = "done", read_metrics(_report_path(row))
    except Exception as err:  # one failed post-hoc row must not lose the sweep
        row.status, row.error = "failed", f"{type(err).__name__}: {err}"
        log(f"{tag}: FAILED ({row.error.splitlines()[0]})")
        return row
    finally:
        row.seconds = time.perf_counter() - start
        gc.collect()
    log(f"{tag}: done in {row.seconds:.0f} s")
    return row


# ---- Optuna: multi-objective search ------------------------------------------------------------------------------
SPACE_KINDS = ("log", "float", "int", "cat")
SAMPLERS = ("tpe", "nsga2", "random")
STUDY_NAME = "fairtune-sweep"


@dataclass(frozen=True)
class Dimension:
    """One searched recipe field: `log`/`float` in [low, high], `int` in [low, high], or `cat` over choices."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()

    def suggest(self, trial) -> str:
        """The trial's value as the flag string the run trains with (floats to 4 significant digits)."""
        if self.kind in ("log", "float"):
            return f"{trial.suggest_float(self.key, self.low, self.high, log=self.kind == 'log'):.4g}"
        if self.kind == "int":
            return str(trial.suggest_int(self.key, int(self.low), int(self.high)))
        return str(trial.suggest_categorical(self.key, list(self.choices)))

    def example(self) -> str:
        """A value inside the range, used to check the configuration before the study starts."""
        if self.kind == "cat":
            return self.choices[0]
        return str(int(self.low)) if self.kind == "int" else f"{self.low:.4g}"

    def spec(self) -> str:
        """The `--space` text of this dimension."""
        if self.kind == "cat":
            return f"{self.key}=cat:{','.join(self.choices)}"
        return f"{self.key}={self.kind}:{self.low:g}:{self.high:g}"


def parse_space(specs: list[str] | None) -> dict[str, Dimension]:
    """`["eo_weight=log:0.01:10", "adversary_steps=int:1:5", "cda=cat:one_sided,two_sided"]` -> dimensions.

    `log` and `float` sample a float in [low, high] (log-uniform or uniform), `int` an integer, `cat` one of the
    listed values. Raises ValueError naming the `--space` entry and the fix.
    """
    space: dict[str, Dimension] = {}
    for spec in specs or []:
        key, eq, body = spec.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        kind, _, rest = body.partition(":")
        kind = kind.strip().lower()
        fix = (
            "write KEY=log:LOW:HIGH, KEY=float:LOW:HIGH, KEY=int:LOW:HIGH or KEY=cat:A,B (e.g. eo_weight=log:0.01:10)"
        )
        if not eq or not key or kind not in SPACE_KINDS or not rest.strip():
            raise ValueError(f"--space {spec!r}: {fix}.")
        if key in _RESERVED:
            raise ValueError(f"--space {key}: the sweep sets `{key}` itself; use --seeds / --output.")
        if key in space:
            raise ValueError(f"--space {key} given twice; give one range per field.")
        if kind == "cat":
            choices = tuple(split_values(rest))
            if len(set(choices)) != len(choices) or len(choices) < 2:
                raise ValueError(f"--space {spec!r}: list two or more distinct choices.")
            space[key] = Dimension(key, kind, choices=choices)
            continue
        parts = rest.split(":")
        try:
            low, high = (float(v) for v in parts)
        except ValueError:
            raise ValueError(f"--space {spec!r}: LOW and HIGH must be two numbers; {fix}.") from None
        if not low < high:
            raise ValueError(f"--space {spec!r}: LOW ({low:g}) must be below HIGH ({high:g}).")
        if kind == "log" and low <= 0:
            raise ValueError(f"--space {spec!r}: a log range needs LOW > 0 (e.g. log:0.01:10); use float:0:10.")
        if kind == "int" and (low != int(low) or high != int(high)):
            raise ValueError(f"--space {spec!r}: int bounds must be whole numbers.")
        space[key] = Dimension(key, kind, low, high)
    return space


def default_storage(output: Path) -> str:
    """SQLite in the sweep's output directory: the study survives an interruption and resumes."""
    return f"sqlite:///{(output / 'optuna.db').resolve()}"


def _redact(url: str) -> str:
    """A storage URL without its password (it goes into sweep.json)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _make_sampler(name: str, seed: int, trials: int, constraints_func):
    import optuna

    if name == "tpe":  # Optuna's default multi-objective sampler (MOTPE); a third of a small budget is random start
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            n_startup_trials=max(2, min(10, trials // 3)),
            constraints_func=constraints_func,
        )
    if name == "nsga2":
        population = max(4, min(50, trials // 2))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population, constraints_func=constraints_func)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"--sampler {name!r}: choose one of {', '.join(SAMPLERS)}.")


def _storage(url: str):
    import optuna

    if not url.startswith(("sqlite:", "postgresql", "mysql", "oracle", "mssql")):
        raise ValueError(f"--storage {_redact(url)!r}: give an Optuna RDB URL such as sqlite:///study.db or "
                         "postgresql://user:pass@host/db (several workers share one study through it).")  # fmt: skip
    # A worker that dies leaves its trial RUNNING; the heartbeat marks it failed and the callback re-queues its
    # parameters, whose run directories (named by the parameters) keep every finished seed.
    import warnings

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's terms since 2.8; they are the fix
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=60,
            grace_period=180,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=2),
        )


def run_search(
    recipe: str | None,
    space: dict[str, Dimension],
    trials: int,
    seeds: str | int | list[int] | None = 1,
    overrides: list[str] | None = None,
    output: str | Path = "outputs/sweep",
    select_criterion: str | None = "dto",
    storage: str | None = None,
    study_name: str | None = None,
    sampler: str = "tpe",
    launcher: str = "local",
    num_processes: int = 1,
    accelerate_config: str | None = None,
    task_metric: str | None = None,
    fairness_metric: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """A multi-objective Optuna study over `space` (task metric up, fairness gap down), each trial over `seeds`.

    Every trial is a configuration of the grid sweep's kind (its runs in `OUTPUT/<key>-<value>__seed-<n>/`, finished
    runs never re-run); its objective values are the seed means. The study lives in `storage` (default SQLite in
    `output`, so an interrupted search resumes; an RDB URL lets several workers share it) and stops when `trials`
    trials are complete. The summary, `sweep.md`, `frontier.png` and the selection (DTO or a constraint, over
    every complete trial) are the grid sweep's; `summary["search"]` adds the trials and the study's Pareto front.
    """
    log = log or logger.info
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from fairtune.parser import parse_config

    if trials < 1:
        raise ValueError(f"--trials must be >= 1, got {trials}.")
    if not space:
        raise ValueError("--search optuna needs at least one --space KEY=log:LOW:HIGH (e.g. eo_weight=log:0.01:10).")
    overrides = list(overrides or [])
    output = Path(output)
    criterion = parse_criterion(select_criterion, task_metric, fairness_metric)
    _check_launcher(launcher, num_processes, accelerate_config)
    base = parse_config(recipe, overrides)[2]
    seed_list = parse_seeds(seeds, base.seed)
    probe = plan_runs({k: [d.example()] for k, d in space.items()}, seed_list[:1], output)
    _expected_fields(recipe, probe, overrides)  # an unknown field or a bad value fails before the study starts
    output.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(output)
    perf_up = higher_is_better(criterion.performance) if criterion.performance else True
    gap_down = not higher_is_better(criterion.fairness) if criterion.fairness else True
    directions = ["maximize" if perf_up else "minimize", "minimize" if gap_down else "maximize"]

    def constraints_func(trial) -> list[float]:
        return list(trial.user_attrs.get("constraint_violation", [0.0]))

    use_constraints = criterion.kind == "constraint"
    study = optuna.create_study(
        storage=_storage(url),
        study_name=study_name or STUDY_NAME,
        directions=directions,
        sampler=_make_sampler(sampler, base.seed, trials, constraints_func if use_constraints else None),
        load_if_exists=True,
    )
    identity = {"recipe": recipe, "overrides": overrides, "space": [d.spec() for d in space.values()],
                "seeds": seed_list}  # fmt: skip
    saved = study.user_attrs.get("sweep")
    if saved is None:
        study.set_user_attr("sweep", identity)
    elif saved != identity:
        raise ValueError(
            f"the study {study.study_name!r} in {_redact(url)} was started with other settings ({saved}); use a new "
            "--output (or --study-name) for a new search, or repeat the original recipe, flags, --space and --seeds."
        )

    def objective(trial) -> tuple[float, float]:
        params = {k: d.suggest(trial) for k, d in space.items()}
        runs = plan_runs({k: [v] for k, v in params.items()}, seed_list, output)
        expected = _expected_fields(recipe, runs, overrides)
        for run in runs:
            tag = f"[trial {trial.number}] {run.config} seed={run.seed}"
            _execute(run, tag, recipe, overrides, expected[run.name], launcher, num_processes, accelerate_config, log)
        trial.set_user_attr("params", params)
        trial.set_user_attr("runs", [r.to_dict() for r in runs])
        done = [r for r in runs if r.status == "done"]
        if not done:
            raise RuntimeError(f"trial {trial.number} ({config_name(params)}): every seed failed; see sweep_error.txt")
        crit = criterion.resolve(done[0].metrics)
        if crit.fairness is None:
            raise RuntimeError(f"trial {trial.number}: the reports hold no fairness metric; pass --fairness-metric.")
        mean = {
            k: _mean_std([r.metrics[k] for r in done if k in r.metrics])[0] for k in (crit.performance, crit.fairness)
        }
        trial.set_user_attr("constraint_violation", [c.violation(mean) for c in crit.constraints] or [0.0])
        trial.set_user_attr("metrics", {"performance": crit.performance, "fairness": crit.fairness})
        return mean[crit.performance], mean[crit.fairness]

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    remaining = trials - len(complete)
    if remaining > 0:
        log(f"[search] {len(complete)} of {trials} trials complete in {study.study_name!r}; running {remaining} more")
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(RuntimeError,),
            callbacks=[MaxTrialsCallback(trials, states=(TrialState.COMPLETE,))],
        )
    else:
        log(f"[search] {len(complete)} trials already complete in {study.study_name!r}; nothing to run")
    return summarize_study(study, recipe, overrides, output, criterion, space, seed_list, url, sampler, launcher)


def summarize_study(
    study, recipe, overrides, output: Path, criterion: Criterion, space, seeds, url, sampler, launcher
):
    """The grid sweep's summary over every complete trial (runs read from the study, so other workers' count too)."""
    from optuna.trial import TrialState

    runs: dict[str, Run] = {}
    trial_rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name, "params": t.user_attrs.get("params", {}),
               "values": list(t.values) if t.values else None}  # fmt: skip
        trial_rows.append(row)
        if t.state != TrialState.COMPLETE:
            continue
        for r in t.user_attrs.get("runs", []):
            run = Run(r["name"], r["config"], r["params"], r["seed"], Path(r["output_dir"]), r["status"],
                      r["metrics"], r["seconds"], r["error"], r["command"])  # fmt: skip
            runs.setdefault(run.name, run)  # the same parameters in two trials are one configuration
    ordered = list(runs.values())
    summary: dict[str, Any] = {
        "recipe": recipe,
        "overrides": overrides,
        "grid": {k: d.spec() for k, d in space.items()},
        "seeds": seeds,
        "select": criterion.describe() if criterion.kind == "constraint" else "dto",
        "launcher": launcher,
        "num_processes": 1,
        "output": str(output),
        "search": {
            "engine": "optuna",
            "sampler": sampler,
            "storage": _redact(url),
            "study_name": study.study_name,
            "directions": [d.name.lower() for d in study.directions],
            "trials": trial_rows,
            "pareto_trials": sorted(t.number for t in study.best_trials) if ordered else [],
        },
    }
    _finish(summary, ordered, criterion, recipe, overrides, output)
    return summary
