"""Debiasing on real data: every method users would pick, on the same RedditBias splits, selected on validation.

RedditBias (Barikeri et al. 2021) holds real Reddit comments about five groups (women, LGBTQ people, Black people,
Jews, Muslims) annotated biased / not biased; base rates differ by group (68% biased for women, 45% for Black
people) and every comment names its group, so a classifier can use identity words as a shortcut (the setting of
Dixon et al. 2018). Methods, each a `fairtune sweep` over a small grid x seeds on the embedded all-MiniLM-L6-v2:

- plain fine-tuning; plain + per-group thresholds (fitted on validation, equalized odds; they need the group at
  inference); plain + LEACE (concept erasure folded into the model; when `fairtune.posthoc.erasure` exists);
- `group_balance` resample and reweight; soft equalized odds (`eo_weight`); MinDiff; group DRO;
- counterfactual augmentation over identity terms (built-in `gender` axis + `recipes/classification/
  redditbias-identity-lexicon.json`: gay/straight, black/white, muslim/christian, jewish -> christian), one-sided and
  two-sided, two-sided with counterfactual logit pairing (one-sided CDA replaces rows in place, so it has no pairs
  for CLP);
- the adversary on the predictions (as in `recipes/classification/minilm-demo-adversary.yaml`);
- Dixon-style balancing: Dixon et al.'s non-toxic Wikipedia sentences mentioning a group's terms, added as
  not-biased rows until each group's biased rate matches the overall rate.

Each method's configuration is selected on validation by DTO (fairlib: accuracy and the TPR-gap RMS, the sweep's
default); its test numbers are mean ± sample std over seeds: accuracy, macro-F1, subgroup / BPSN / BNSP AUC
(worst group), FPR and FNR per group, equalized odds difference, fairlib's GAP (`tpr_gap_rms`) and a held-out
leakage probe on the test split's pooled representation. Runs train on train, are reported on validation by the
pipeline (which the sweep selects on), and are predicted on test by this script (cached in each run directory as
`bench_predictions.npz`): nothing is trained twice and nothing is re-run on resume. Seeds go in passes (every method
at the first seed, then the second, ...), so an interrupted benchmark holds complete partial tables.

    python bench/bench_real.py                           # full: 3 seeds, ~1 min per run on one idle core
    python bench/bench_real.py --quick                   # one seed, small subsample, first grid value (~5 min)
    python bench/bench_real.py --methods plain,eo,cda_two_sided --seeds 42,43
    python bench/bench_real.py --compare-search 6        # + grid vs Optuna on eo_weight with 6 trials each
    python bench/bench_real.py --seeds 43 &              # workers: one per seed, same --output; then run the
    python bench/bench_real.py --seeds 44 &              #   full command once more: it trains nothing and
                                                         #   writes the tables over every seed

Writes OUTPUT/results.json, OUTPUT/results.md (the tables) and OUTPUT/frontier.png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data" / "redditbias"
WIKI_FILE = REPO.parent / "shared" / "data" / "wiki_debias_augmentation" / "toxicity_debiasing_data.tsv"
LEXICON = REPO / "recipes" / "classification" / "redditbias-identity-lexicon.json"
PREDICTIONS = "bench_predictions.npz"

CDA = ["--cda_axes", "gender", "--cda_lexicon", str(LEXICON)]
ADVERSARY = ["--adversary_input", "logits", "--adversary_label_conditioned", "true", "--adversary_balance", "true",
             "--adversary_steps", "5", "--adversary_lr", "1e-3"]  # fmt: skip
# method -> (grid, extra flags, training file); the first grid value is the one --quick runs
METHODS: dict[str, tuple[dict[str, list[str]], list[str], str]] = {
    "plain": ({}, [], "train"),
    "resample": ({}, ["--group_balance", "resample"], "train"),
    "reweight": ({}, ["--group_balance", "reweight"], "train"),
    "eo": ({"eo_weight": ["1", "0.3"]}, [], "train"),
    "mindiff": ({"mindiff_weight": ["1", "0.3"]}, [], "train"),
    "group_dro": ({"group_dro_weight": ["1"]}, ["--group_dro_step_size", "0.01"], "train"),
    "cda_one_sided": ({}, [*CDA, "--cda", "one_sided"], "train"),
    "cda_two_sided": ({}, [*CDA, "--cda", "two_sided"], "train"),
    "cda_two_sided_clp": ({"clp_weight": ["1"]}, [*CDA, "--cda", "two_sided"], "train"),
    "adversary": ({"adversary_weight": ["1", "0.3"]}, ADVERSARY, "train"),
    "dixon": ({}, [], "train_dixon"),
}
# In-training methods also measured with LEACE folded in afterwards.
LEACE_AFTER = ("resample", "reweight", "cda_two_sided")
POSTHOC = ("plain+thresholds", "plain+thresholds (randomized)", "plain+LEACE")
HEADLINE = ("accuracy", "macro_f1", "equalized_odds_difference", "tpr_gap_rms", "subgroup_auc_min", "bpsn_auc_min",
            "bnsp_auc_min", "leakage_probe_accuracy", "transfer_probe_accuracy")  # fmt: skip
SHORT = {"equalized_odds_difference": "EO diff", "tpr_gap_rms": "GAP (tpr_gap_rms)", "subgroup_auc_min": "subgroup AUC",
         "bpsn_auc_min": "BPSN AUC", "bnsp_auc_min": "BNSP AUC", "leakage_probe_accuracy": "leakage probe",
         "transfer_probe_accuracy": "transfer probe (LEACE rows)"}  # fmt: skip


# ---- data ----------------------------------------------------------------------------------------------------------
def _take(rows: list[dict], n: int | None) -> list[dict]:
    """The first rows of each (group, label) cell in their seeded order, proportionally to the cell sizes."""
    if not n or n >= len(rows):
        return rows
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["group"], r["label"]), []).append(r)
    keep = {id(r) for c in cells.values() for r in c[: max(1, round(len(c) * n / len(rows)))]}
    return [r for r in rows if id(r) in keep]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write atomically and only when the content changed: several workers (one per seed) share the data files."""
    text = "".join(json.dumps({k: r[k] for k in ("id", "text", "label", "group")}) + "\n" for r in rows)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def prepare_data(out: Path, n_train: int | None, n_val: int | None, n_test: int | None) -> dict[str, Any]:
    """Write the splits (stratified subsamples of the fixed split) and the Dixon-balanced training file."""
    from fairtune.data.redditbias import dixon_balance, load_redditbias_rows, read_wiki_augmentation

    out.mkdir(parents=True, exist_ok=True)
    splits, report = load_redditbias_rows(DATA_DIR, seed=42)
    rows = {"train": _take(splits["train"], n_train), "validation": _take(splits["validation"], n_val),
            "test": _take(splits["test"], n_test)}  # fmt: skip
    dixon, added = dixon_balance(rows["train"], read_wiki_augmentation(WIKI_FILE), seed=0)
    files = {k: str(_write_jsonl(out / f"{k}.jsonl", v)) for k, v in rows.items()}
    files["train_dixon"] = str(_write_jsonl(out / "train_dixon.jsonl", dixon))
    info = {"files": files, "sizes": {k: len(v) for k, v in rows.items()}, "dixon_added": added,
            "cleaning": report.to_dict(), "cleaning_md": report.markdown()}  # fmt: skip
    (out / "data.json").write_text(json.dumps(info, indent=2))
    return info


def common_flags(files: dict[str, str], args: argparse.Namespace) -> list[str]:
    """The recipe every method shares, as `fairtune train` flags (train file set per method)."""
    return ["--model_name_or_path", "minilm", "--validation_file", files["validation"], "--text_column", "text",
            "--label_column", "label", "--group_column", "group", "--max_length", str(args.max_length),
            "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "128",
            "--learning_rate", str(args.learning_rate), "--num_train_epochs", str(args.epochs), "--warmup_steps", "5",
            "--logging_steps", "1000", "--disable_tqdm", "true", "--save_strategy", "no", "--eval_strategy", "no",
            "--use_cpu", "true", "--report_to", "none"]  # fmt: skip


# ---- predictions and metrics ---------------------------------------------------------------------------------------
def _load(model_dir: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir), AutoModelForSequenceClassification.from_pretrained(
        model_dir
    ).eval()


def predict_model(
    model, tok, texts: list[str], max_length: int, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and the first-token pooled representation (what fairtune's probe reads) of `texts`."""
    import torch

    probs, pooled = [], []
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            enc = tok(texts[s : s + batch_size], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")  # fmt: skip
            out = model(**enc, output_hidden_states=True)
            probs.append(torch.softmax(out.logits.float(), -1).numpy())
            pooled.append(out.hidden_states[-1][:, 0].float().numpy())
    return np.concatenate(probs), np.concatenate(pooled)


def predict(
    model_dir: Path, texts: list[str], max_length: int, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and pooled representations of a saved run's model."""
    tok, model = _load(model_dir)
    return predict_model(model, tok, texts, max_length, batch_size)


def run_predictions(run_dir: Path, data: dict[str, list[dict]], max_length: int, with_validation: bool) -> dict:
    """Test (and validation) probabilities + pooled vectors of one run, cached in the run directory."""
    path = run_dir / PREDICTIONS
    if path.is_file():
        cached = dict(np.load(path))
        if not with_validation or "validation_probs" in cached:
            return cached
    out: dict[str, np.ndarray] = {}
    for split in ("test", "validation") if with_validation else ("test",):
        probs, pooled = predict(run_dir, [r["text"] for r in data[split]], max_length)
        out[f"{split}_probs"], out[f"{split}_pooled"] = probs, pooled.astype(np.float32)
    np.savez_compressed(path, **out)
    return out


def score(labels: np.ndarray, pred: np.ndarray, pos_scores: np.ndarray, groups: list[str], pooled=None, seed=0):
    """Every reported metric of one prediction set (group metrics, subgroup AUCs, per-group FPR/FNR, probe)."""
    from fairtune.metrics.group import group_fairness_metrics
    from fairtune.metrics.subgroup_auc import subgroup_auc_report

    gm = group_fairness_metrics(labels, pred, groups, labels=[0, 1])
    m = {k: gm[k] for k in ("accuracy", "macro_f1", "equalized_odds_difference", "tpr_gap_rms",
                            "demographic_parity_difference")}  # fmt: skip
    for g, row in gm["per_group"].items():
        m[f"fpr_{g}"], m[f"fnr_{g}"] = row["fpr"], 1.0 - row["tpr"]
    g_arr = np.asarray(groups)
    auc = subgroup_auc_report(labels, pos_scores, {g: g_arr == g for g in sorted(set(groups))})
    m.update({k: auc[k] for k in ("overall_auc", "subgroup_auc_min", "bpsn_auc_min", "bnsp_auc_min",
                                  "subgroup_auc_gmean", "bpsn_auc_gmean", "bnsp_auc_gmean")})  # fmt: skip
    if pooled is not None:
        from fairtune.objectives.adversarial import leakage_probe

        names = sorted(set(groups))
        probe = leakage_probe(pooled, np.asarray([names.index(g) for g in groups]), seed=seed)
        m["leakage_probe_accuracy"] = probe["leakage_probe_accuracy"]
        m["leakage_probe_majority_baseline"] = probe["leakage_probe_majority_baseline"]
    return m


def _thresholds_api():
    try:
        from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds
    except ImportError:
        from fairtune.posthoc.thresholds import apply_thresholds, fit_thresholds
    return fit_thresholds, apply_thresholds


def leace_available() -> bool:
    """Whether `fairtune.posthoc.erasure` (LEACE) is importable in this checkout."""
    try:
        import fairtune.posthoc.erasure  # noqa: F401
    except ImportError:
        return False
    return True


def posthoc_thresholds(pred: dict, data: dict, seed: int, randomized: bool = False) -> tuple[dict, dict]:
    """Per-group thresholds (equalized odds) fitted on validation; (validation, test) metrics.

    Deterministic: one threshold per group; randomized: Hardt et al.'s mix of two thresholds per group (exact
    equalized odds on the fitting data, a coin flip per prediction)."""
    fit, apply = _thresholds_api()
    yv, gv = np.asarray([r["label"] for r in data["validation"]]), [r["group"] for r in data["validation"]]
    yt, gt = np.asarray([r["label"] for r in data["test"]]), [r["group"] for r in data["test"]]
    kw = {"randomized": True, "seed": seed} if randomized else {}
    th = fit(pred["validation_probs"][:, 1], yv, gv, criterion="equalized_odds", **kw)
    pv, pt = apply(pred["validation_probs"][:, 1], gv, th), apply(pred["test_probs"][:, 1], gt, th)
    val = score(yv, pv, pred["validation_probs"][:, 1], gv)
    test = score(yt, pt, pred["test_probs"][:, 1], gt, pred["test_pooled"], seed)  # scores, representation unchanged
    return val, test


def posthoc_leace(run_dir: Path, data: dict, max_length: int, seed: int) -> tuple[dict, dict]:
    """Plus LEACE: the group erased from the head's input, fitted on the training split (what `erasure: leace` does
    after training), folded into the head, so the result is a plain transformers model that needs no group at
    inference; (validation, test) metrics, cached in the run directory. This row's `leakage probe` reads the erased
    head input (what the decision is made from), cross-validated on test; `transfer probe` is trained on the erased
    training rows and scored on test (the INLP/RLACE/LEACE papers' protocol, what the eraser guarantees).
    """
    from fairtune.objectives.adversarial import transfer_probe
    from fairtune.posthoc.erasure import apply_eraser, fit_eraser, fold_eraser, head_inputs, text_batches

    cache = run_dir / "bench_leace_train.npz"
    yv, gv = np.asarray([r["label"] for r in data["validation"]]), [r["group"] for r in data["validation"]]
    yt, gt = np.asarray([r["label"] for r in data["test"]]), [r["group"] for r in data["test"]]
    gtr = [r["group"] for r in data["train"]]
    names = sorted(set(gv) | set(gt) | set(gtr))
    if cache.is_file():
        c = dict(np.load(cache))
    else:
        tok, model = _load(run_dir)
        texts_v, texts_t = [r["text"] for r in data["validation"]], [r["text"] for r in data["test"]]
        texts_tr = [r["text"] for r in data["train"]]
        batches = text_batches(tok, texts_tr, [names.index(g) for g in gtr], batch_size=128, max_length=max_length)
        fit = fit_eraser(model, batches, len(names))
        erased = fold_eraser(model, fit)
        train_erased = apply_eraser(fit, head_inputs(model, tok, texts_tr, batch_size=128))
        test_erased = apply_eraser(fit, head_inputs(model, tok, texts_t, batch_size=128))
        moved = transfer_probe(train_erased, np.asarray([names.index(g) for g in gtr]), test_erased,
                               np.asarray([names.index(g) for g in gt]), seed=seed)  # fmt: skip
        c = {"validation_probs": predict_model(erased, tok, texts_v, max_length)[0],
             "test_probs": predict_model(erased, tok, texts_t, max_length)[0],
             "test_head_erased": test_erased.astype(np.float32),
             "transfer_probe": np.asarray(moved["transfer_probe_accuracy"])}  # fmt: skip
        np.savez_compressed(cache, **c)
    val = score(yv, c["validation_probs"].argmax(1), c["validation_probs"][:, 1], gv)
    test = score(yt, c["test_probs"].argmax(1), c["test_probs"][:, 1], gt, c["test_head_erased"], seed)
    test["transfer_probe_accuracy"] = float(c["transfer_probe"])
    return val, test


# ---- aggregation and tables ----------------------------------------------------------------------------------------
def mean_std(rows: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-metric seed mean and sample std over the metric dicts in `rows` (keys all rows share)."""
    keys = [k for k in rows[0] if all(k in r and isinstance(r[k], (int, float)) for r in rows)] if rows else []
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    std = {k: float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0 for k in keys}
    return mean, std


def _cell(row: dict, key: str) -> str:
    m, s = row["test_mean"].get(key), row["test_std"].get(key)
    return "n/a" if m is None or not math.isfinite(m) else f"{m:.3f}±{s:.3f}"


def render_tables(result: dict[str, Any]) -> str:
    """Markdown: the headline table, the per-group FPR/FNR table, the goal check and the data cleaning."""
    rows = result["rows"]
    base = next((r for r in rows if r["method"] == "plain" and r["n"]), None)
    lines = [f"Seeds: {result['seeds']} ({'complete' if result['complete'] else 'PARTIAL: not every run finished'})."
             f" Train / validation / test rows: {result['data']['sizes']}.", ""]  # fmt: skip
    head = ["method", "selected (validation DTO)", "seeds", *[SHORT.get(k, k) for k in HEADLINE], "goal", "s/run"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        goal = ""
        if base and r is not base and r["n"]:
            eo0, f0 = base["test_mean"]["equalized_odds_difference"], base["test_mean"]["macro_f1"]
            eo, f1 = r["test_mean"]["equalized_odds_difference"], r["test_mean"]["macro_f1"]
            rel = f"{eo / eo0 - 1:+.0%}" if eo0 > 0 else f"{eo - eo0:+.3f}"
            goal = "**yes**" if eo <= 0.5 * eo0 and f1 >= f0 - 0.01 else f"EO {rel}, F1 {f1 - f0:+.3f}"
        cells = [r["method"], f"`{r['config']}`", str(r["n"]), *[_cell(r, k) for k in HEADLINE], goal,
                 f"{r['seconds']:.0f}" if r.get("seconds") else ""]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    groups = result["groups"]
    lines += ["", "FPR / FNR per group on test (mean over seeds; positive = biased):", ""]
    head = ["method", *[f"{g} FPR / FNR" for g in groups]]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        if not r["n"]:
            continue
        cells = [f"{r['test_mean'].get(f'fpr_{g}', math.nan):.3f} / {r['test_mean'].get(f'fnr_{g}', math.nan):.3f}"
                 for g in groups]  # fmt: skip
        lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    if result.get("overall"):
        o = result["overall"]
        lines += ["", f"Across methods, validation DTO (accuracy, tpr_gap_rms) picks **{o['method']}** "
                  f"(`{o['config']}`, DTO {o['dto']:.4f}); ranking: {', '.join(o['ranking'])}."]  # fmt: skip
    if result.get("search"):
        lines += ["", "## Grid vs Optuna (same trials)", "", result["search"]["markdown"]]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Test macro-F1 against test EO difference: every configuration (dots) and each method's selection (error bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for c in result["configs"]:
        ax.scatter([c["test_mean"]["equalized_odds_difference"]], [c["test_mean"]["macro_f1"]], s=12, c="0.6")
    cmap = plt.get_cmap("tab20")
    for i, r in enumerate(r for r in result["rows"] if r["n"]):
        x, y = r["test_mean"]["equalized_odds_difference"], r["test_mean"]["macro_f1"]
        ax.errorbar(x, y, xerr=r["test_std"]["equalized_odds_difference"], yerr=r["test_std"]["macro_f1"],
                    fmt="*" if "+" in r["method"] else "o", color=cmap(i % 20), capsize=3, label=r["method"])  # fmt: skip
    ax.set_xlabel("equalized odds difference on test (lower is fairer)")
    ax.set_ylabel("macro-F1 on test")
    ax.set_title("RedditBias, all-MiniLM-L6-v2: methods selected on validation (mean ± std over seeds)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="best", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the benchmark -------------------------------------------------------------------------------------------------
def _load_rows(files: dict[str, str]) -> dict[str, list[dict]]:
    return {
        k: [json.loads(line) for line in open(files[k], encoding="utf-8")] for k in ("train", "validation", "test")
    }


def collect(summaries: dict[str, dict], data: dict, info: dict, args, seeds: list[int], final: bool = False) -> dict:
    """Predict every finished run on test, score it, and build the rows of the tables."""
    yt = np.asarray([r["label"] for r in data["test"]])
    gt = [r["group"] for r in data["test"]]
    rows, configs = [], []
    per_run: dict[str, dict[str, Any]] = {}
    for method, summary in summaries.items():
        for run in summary["runs"]:
            if run["status"] != "done":
                continue
            pred = run_predictions(Path(run["output_dir"]), data, args.max_length, with_validation=method == "plain")
            per_run[run["output_dir"]] = pred
            probs = pred["test_probs"]
            run["test"] = score(yt, probs.argmax(1), probs[:, 1], gt, pred["test_pooled"], run["seed"])
        for c in summary["configs"]:
            done = [r for r in summary["runs"] if r["config"] == c["name"] and "test" in r]
            if done:
                mean, std = mean_std([r["test"] for r in done])
                configs.append({"method": method, "config": c["name"], "n": len(done), "test_mean": mean,
                                "test_std": std, "validation_mean": c.get("mean", {})})  # fmt: skip
        sel = (summary.get("selection") or {}).get("config")
        chosen = next((c for c in configs if c["method"] == method and c["config"] == sel), None)
        done = [r for r in summary["runs"] if r["config"] == sel and "test" in r]
        secs = [r["seconds"] for r in summary["runs"] if r.get("seconds")]
        if chosen:
            rows.append(dict(chosen, seconds=float(np.mean(secs)) if secs else None, seeds=[r["seed"] for r in done]))
        else:
            rows.append({"method": method, "config": sel or "none", "n": 0, "test_mean": {}, "test_std": {}})
        if method == "plain" and done:
            rows += posthoc_rows(done, per_run, data, args.max_length)
        elif method in LEACE_AFTER and done and leace_available():  # in-training method + post-hoc erasure
            pairs = [posthoc_leace(Path(r["output_dir"]), data, args.max_length, r["seed"]) for r in done]
            rows.append(_posthoc_row(f"{method}+LEACE", f"{sel} + LEACE fitted on train, folded", pairs))
    result = {"seeds": seeds, "data": info, "groups": sorted(set(gt)), "rows": rows, "configs": configs}
    result["complete"] = final and all(r["status"] == "done" for s in summaries.values() for r in s["runs"])
    result["overall"] = overall_selection(rows)
    return result


def _posthoc_row(method: str, config: str, pairs: list[tuple[dict, dict]]) -> dict[str, Any]:
    mv, _ = mean_std([v for v, _ in pairs])
    mt, st = mean_std([t for _, t in pairs])
    return {
        "method": method,
        "config": config,
        "n": len(pairs),
        "test_mean": mt,
        "test_std": st,
        "validation_mean": mv,
    }


def posthoc_rows(done: list[dict], per_run: dict, data: dict, max_length: int) -> list[dict[str, Any]]:
    """The post-hoc rows on the plain runs: deterministic and randomized thresholds, LEACE (when importable)."""
    preds = [(per_run[r["output_dir"]], r["seed"]) for r in done]
    rows = [
        _posthoc_row("plain+thresholds", "equalized_odds, fitted on validation",
                     [posthoc_thresholds(p, data, seed) for p, seed in preds]),
        _posthoc_row("plain+thresholds (randomized)", "equalized_odds, Hardt et al., fitted on validation",
                     [posthoc_thresholds(p, data, seed, randomized=True) for p, seed in preds]),
    ]  # fmt: skip
    if leace_available():
        pairs = [posthoc_leace(Path(r["output_dir"]), data, max_length, r["seed"]) for r in done]
        rows.append(_posthoc_row("plain+LEACE", "LEACE on the head input, fitted on train, folded", pairs))
    else:
        rows.append({"method": "plain+LEACE", "config": "not run: fairtune.posthoc.erasure is not importable", "n": 0,
                     "test_mean": {}, "test_std": {}})  # fmt: skip
    return rows


def overall_selection(rows: list[dict]) -> dict[str, Any] | None:
    """DTO on validation (accuracy, tpr_gap_rms) across every method's selected configuration."""
    from fairtune.selection import dto, fairness_scores

    ok = [r for r in rows if r["n"] and {"accuracy", "tpr_gap_rms"} <= set(r.get("validation_mean", {}))]
    if not ok:
        return None
    d = dto([r["validation_mean"]["accuracy"] for r in ok],
            fairness_scores([r["validation_mean"]["tpr_gap_rms"] for r in ok], "tpr_gap_rms", scale=1.0))  # fmt: skip
    order = sorted(range(len(ok)), key=lambda i: d[i])
    best = ok[order[0]]
    return {"method": best["method"], "config": best["config"], "dto": d[order[0]],
            "ranking": [f"{ok[i]['method']} {d[i]:.3f}" for i in order]}  # fmt: skip


def existing_summary(grid: dict[str, list[str]], seeds: list[int], output: Path) -> dict[str, Any]:
    """A method's sweep summary from the runs already on disk (nothing trains): for `--report-only`."""
    from fairtune.selection import parse_criterion
    from fairtune.sweep import analyse, plan_runs, read_metrics

    runs = plan_runs(grid, seeds, output)
    for run in runs:
        report = run.output_dir / "fairness_report.json"
        if report.is_file():
            run.status, run.metrics = "done", read_metrics(report)
    summary = analyse(runs, parse_criterion("dto"))
    summary["runs"] = [r.to_dict() for r in runs]
    return summary


def compare_grid_optuna(key: str, low: float, high: float, n: int, seed: int, flags: list[str], out: Path, log):
    """Grid (n log-spaced values) against an Optuna study (n trials) over one weight, same data, seed and budget.

    DTO is computed over the union of both engines' configurations (validation accuracy and tpr_gap_rms), so the
    two best points are measured against the same utopia point.
    """
    from fairtune.selection import dto, fairness_scores
    from fairtune.sweep import Dimension, run_search, run_sweep

    values = [f"{v:.4g}" for v in np.geomspace(low, high, n)]
    grid = run_sweep(None, {key: values}, [seed], flags, out / "grid", "dto", log=log)
    study = run_search(None, {key: Dimension(key, "log", low, high)}, n, [seed], flags, out / "optuna", "dto", log=log)
    points = [("grid", c) for c in grid["configs"] if c["n"]] + [("optuna", c) for c in study["configs"] if c["n"]]
    acc = [c["mean"]["accuracy"] for _, c in points]
    gap = [c["mean"]["tpr_gap_rms"] for _, c in points]
    scores = dto(acc, fairness_scores(gap, "tpr_gap_rms", scale=1.0))
    best = {}
    for engine in ("grid", "optuna"):
        mine = [i for i, (e, _) in enumerate(points) if e == engine]
        if mine:
            i = min(mine, key=lambda j: scores[j])
            best[engine] = {
                "config": points[i][1]["name"],
                "dto": scores[i],
                "accuracy": acc[i],
                "tpr_gap_rms": gap[i],
            }
    lines = [f"`{key}` in [{low:g}, {high:g}], {n} configurations each, seed {seed}, validation split; DTO over the "
             "union of both engines' points.", "", "| engine | best configuration | accuracy | tpr_gap_rms | DTO |",
             "|---|---|---|---|---|"]  # fmt: skip
    for engine, b in best.items():
        lines.append(f"| {engine} | `{b['config']}` | {b['accuracy']:.4f} | {b['tpr_gap_rms']:.4f} | {b['dto']:.4f} |")
    if len(best) == 2:
        g, o = best["grid"]["dto"], best["optuna"]["dto"]
        winner = "Optuna" if o < g else "the grid" if g < o else "neither (a tie)"
        lines += ["", f"Lower DTO: {winner} ({min(g, o):.4f} vs {max(g, o):.4f})."]
    return {"best": best, "points": [(e, c["name"], a, g, d) for (e, c), a, g, d in zip(points, acc, gap, scores)],
            "markdown": "\n".join(lines)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Prepare the data, run every method's sweep seed pass by seed pass, predict on test, write the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {', '.join(METHODS)}")
    p.add_argument("--seeds", default="42,43,44", help="seed list")
    p.add_argument("--quick", action="store_true", help="one seed, small subsample, first grid value of each method")
    p.add_argument("--n-train", type=int, default=None, help="training rows (default 1600; --quick 320)")
    p.add_argument("--n-val", type=int, default=None, help="validation rows (default 600; --quick 200)")
    p.add_argument("--n-test", type=int, default=None, help="test rows (default: the whole split; --quick 300)")
    p.add_argument("--epochs", type=float, default=None, help="default 1 (--quick 2)")
    p.add_argument("--max-length", type=int, default=40)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--report-only", action="store_true", help="train nothing: tables from the finished runs")
    p.add_argument("--compare-search", type=int, default=0, metavar="N", help="grid vs Optuna with N trials each")
    p.add_argument("--output", default=None, help="default outputs/bench_real (outputs/bench_real_quick)")
    args = p.parse_args(argv)
    if not DATA_DIR.is_dir():
        print(f"bench_real: RedditBias not found at {DATA_DIR}; it is read from ../shared/data.", file=sys.stderr)
        return 2
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    defaults = (320, 200, 300, 2.0) if args.quick else (1600, 600, None, 1.0)
    for name, value in zip(("n_train", "n_val", "n_test", "epochs"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.seeds = args.seeds.split(",")[0]
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.output or ("outputs/bench_real_quick" if args.quick else "outputs/bench_real"))
    import torch
    import transformers

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if os.environ.get("FAIRTUNE_BENCH_VERBOSE") is None:
        transformers.logging.set_verbosity_error()
    from fairtune.sweep import run_sweep

    log_file = open(out.parent / f"{out.name}.log", "a") if out.parent.is_dir() else None

    def log(msg: str) -> None:
        print(msg, flush=True)
        if log_file:
            log_file.write(msg + "\n")
            log_file.flush()

    info = prepare_data(out / "data", args.n_train, args.n_val, args.n_test)
    data = _load_rows(info["files"])
    flags = common_flags(info["files"], args)
    start = time.perf_counter()
    summaries: dict[str, dict] = {}
    # Passes: every method's first grid value at the first seed, then at the second, ...; then the other grid
    # values at every seed. Complete tables are written after every method, so an interrupted run reports what it has.
    passes = [(seeds[:k], True) for k in range(1, len(seeds) + 1)]
    if not args.quick and any(len(v) > 1 for m in methods for v in METHODS[m][0].values()):
        passes.append((seeds, False))
    for k, (pass_seeds, first_only) in enumerate([] if args.report_only else passes, 1):
        for method in methods:
            grid, extra, train = METHODS[method]
            if first_only:
                grid = {key: vals[:1] for key, vals in grid.items()}
            method_flags = [*flags, "--train_file", info["files"][train], *extra]
            log(f"== pass {k}/{len(passes)} (seeds {pass_seeds}): {method} {grid or ''}")
            summaries[method] = run_sweep(None, grid, pass_seeds, method_flags, out / method, "dto",
                                          log=log)  # fmt: skip
            final = k == len(passes) and method == methods[-1]
            result = collect(summaries, data, info, args, seeds, final)
            (out / "results.json").write_text(json.dumps(result, indent=2, default=float))
            (out / "results.md").write_text(render_tables(result))
    if args.report_only:
        summaries = {m: existing_summary(METHODS[m][0], seeds, out / m) for m in methods}
        result = collect(summaries, data, info, args, seeds, True)
    if args.compare_search:
        result["search"] = compare_grid_optuna("eo_weight", 0.01, 10.0, args.compare_search, seeds[0],
                                               [*flags, "--train_file", info["files"]["train"]], out / "search", log)  # fmt: skip
    plot(result, out / "frontier.png")
    (out / "results.json").write_text(json.dumps(result, indent=2, default=float))
    (out / "results.md").write_text(render_tables(result))
    log(f"\n{render_tables(result)}\n{info['cleaning_md']}\nWrote {out}/results.md, results.json, frontier.png "
        f"in {time.perf_counter() - start:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
