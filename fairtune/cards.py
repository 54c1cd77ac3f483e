"""Model cards for debiased models: what was debiased, how, and with what measured effect.

Everything on a card comes from files in the model directory written by `fairtune train` / `fairtune evaluate`
(`fairtune_config.json`, `fairness_report.json`, an evaluation `results.json`, `*.png` plots) and from a baseline
the user names (`--baseline`). Nothing is estimated or invented: a number that is not in those files is not on the
card. Templates live in the top-level `model_cards/` folder (shipped with the package); metadata goes through
`huggingface_hub.ModelCardData` so that `ModelCard.load(path).data.eval_results` reads the fairness results back.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

logger = logging.getLogger(__name__)

CONFIG_NAME = "fairtune_config.json"
REPORT_NAME = "fairness_report.json"
REPORT_MD_NAME = "fairness_report.md"
EVAL_RESULTS_NAME = "results.json"
BASELINE_NAME = "baseline_report.json"
CARD_NAME = "README.md"
MAIN_TEMPLATE = "fairtune_model_card.md.j2"
CITATIONS_FILE = "citations.yaml"

#: fields that may hold a Hub token; removed from anything fairtune writes
TOKEN_FIELDS = ("hub_token", "push_to_hub_token")
#: keys of fairtune_config.json that are provenance, not recipe fields
META_KEYS = ("command", "fairtune_version", "base_model_hub_id", "group_names", "label_list", "group_counts")
#: per-group keys that count evaluation examples
COUNT_KEYS = ("n", "count", "support", "num_examples", "n_examples")
SMALL_GROUP_THRESHOLD = 100
_NOT_METRICS = frozenset(
    {
        *COUNT_KEYS,
        "epoch",
        "step",
        "global_step",
        "seed",
        "runtime",
        "ci_level",
        "confidence_level",
        "n_bootstrap",
        "bootstrap_samples",
        "num_groups",
    }
)

_REDACTED = "<redacted>"
_SECRET_PATTERNS = (
    # --hub_token X, --hub-token=X, --token X (command lines)
    re.compile(r"(--(?:hub[_-])?token(?:=|\s+))(\S+)"),
    # hub_token: X / "hub_token": "X" (YAML or JSON text)
    re.compile(r"""((?<![\w-])["']?(?:hub_token|push_to_hub_token|token)["']?\s*[:=]\s*["']?)([^\s"',}]+)"""),
    # HF_TOKEN=X / HUGGING_FACE_HUB_TOKEN=X environment prefixes
    re.compile(r"((?:HF_TOKEN|HUGGING_FACE_HUB_TOKEN|HF_API_TOKEN)=)(\S+)"),
)
_HF_TOKEN_RE = re.compile(r"\bhf_[A-Za-z0-9]{16,}\b")


class CardError(ValueError):
    """A model directory or baseline that cannot be turned into a card; the message names the fix."""


# --------------------------------------------------------------------------------------------------- secrets


def current_token() -> str | None:
    """The Hub token from the environment or the login, used only to make sure it is never written."""
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001 - a broken token file must not stop a card from rendering
        return None


def redact_secrets(text: str, extra: Iterable[str | None] = ()) -> str:
    """`text` with Hub tokens (flags, `key: value` pairs, `hf_...` strings and the given literals) redacted."""
    for literal in extra:
        if literal:
            text = text.replace(literal, _REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + _REDACTED, text)
    return _HF_TOKEN_RE.sub(_REDACTED, text)


_FILLED_TOKEN_FIELD_RE = re.compile(
    r"""(?<![\w-])["']?(?:hub_token|push_to_hub_token)["']?\s*[:=]\s*["']?(?!null\b|None\b|~|<redacted>)[^\s"',}]+"""
)


def find_secret(text: str) -> str | None:
    """Describe a Hub token written in `text` (an hf_... string or a filled-in `hub_token` field), or None."""
    if _HF_TOKEN_RE.search(text):
        return "an hf_... access token"
    if _FILLED_TOKEN_FIELD_RE.search(text):
        return "a filled-in `hub_token` field"
    return None


def scrub_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a resolved fairtune config without token fields and with the command line redacted."""
    token = current_token()
    clean: dict[str, Any] = {}
    for key, value in config.items():
        if key in TOKEN_FIELDS:
            continue
        if isinstance(value, str):
            value = redact_secrets(value, (token,))
        clean[key] = value
    return clean


# --------------------------------------------------------------------------------------------------- loading


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CardError(f"{what}: {path} is not valid JSON ({err}); re-create it with `fairtune train`.") from err
    if not isinstance(data, dict):
        raise CardError(f"{what}: {path} must hold a JSON object, found {type(data).__name__}.")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def find_evaluation_results(model_dir: str | os.PathLike) -> Path | None:
    """The newest `results.json` written by `fairtune evaluate` in the model dir or a direct subfolder."""
    root = Path(model_dir)
    found = [root / EVAL_RESULTS_NAME] if (root / EVAL_RESULTS_NAME).is_file() else []
    for child in sorted(root.iterdir()) if root.is_dir() else ():
        if child.is_dir() and not _is_training_state_dir(child.name) and (child / EVAL_RESULTS_NAME).is_file():
            found.append(child / EVAL_RESULTS_NAME)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _is_training_state_dir(name: str) -> bool:
    return name.startswith(("checkpoint-", "global_step", ".")) or name in {"runs", "wandb", "last-checkpoint"}


@dataclass
class RunFiles:
    """What a trained model directory holds, read once."""

    model_dir: Path
    config: dict[str, Any]
    report: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    evaluation_path: Path | None = None
    model_config: dict[str, Any] | None = None
    adapter_config: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)
    thresholds: str | None = None


def load_run(model_dir: str | os.PathLike) -> RunFiles:
    """Read the config, reports and model metadata of a `fairtune train` output dir."""
    root = Path(model_dir)
    if not root.is_dir():
        raise CardError(f"--model-dir: {root} is not a directory; pass the `output_dir` of `fairtune train`.")
    if not (root / CONFIG_NAME).is_file():
        raise CardError(
            f"--model-dir: {root} has no {CONFIG_NAME}; pass the `output_dir` of a finished `fairtune train` run "
            "(the card is built from the resolved recipe saved there)."
        )
    run = RunFiles(model_dir=root, config=scrub_config(_read_json(root / CONFIG_NAME, CONFIG_NAME)))
    if (root / REPORT_NAME).is_file():
        run.report = _read_json(root / REPORT_NAME, REPORT_NAME)
    run.evaluation_path = find_evaluation_results(root)
    if run.evaluation_path is not None:
        run.evaluation = _read_json(run.evaluation_path, EVAL_RESULTS_NAME)
    if (root / "config.json").is_file():
        run.model_config = _read_json(root / "config.json", "config.json")
    if (root / "adapter_config.json").is_file():
        run.adapter_config = _read_json(root / "adapter_config.json", "adapter_config.json")
    run.plots = sorted(p.name for p in root.glob("*.png"))
    if run.evaluation_path is not None and run.evaluation_path.parent != root:
        run.plots += sorted(p.relative_to(root).as_posix() for p in run.evaluation_path.parent.glob("*.png"))
    thresholds = sorted(p.name for p in root.glob("*thresholds*.json"))
    run.thresholds = thresholds[0] if thresholds else None
    return run


# --------------------------------------------------------------------------------------------------- baseline


def load_baseline(baseline: str | os.PathLike, *, model_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read a baseline run dir or report file into the `baseline_report.json` form (metrics + provenance)."""
    path = Path(baseline)
    if not path.exists():
        raise CardError(f"--baseline: {path} does not exist; pass a baseline run's output dir or its report JSON.")
    if path.is_dir():
        if model_dir is not None and path.resolve() == Path(model_dir).resolve():
            raise CardError("--baseline: points at the model dir itself; pass the run you compare against.")
        candidates = [path / REPORT_NAME, path / EVAL_RESULTS_NAME]
        evaluation = find_evaluation_results(path)
        candidates += [evaluation] if evaluation else []
        report_path = next((p for p in candidates if p.is_file()), None)
        if report_path is None:
            raise CardError(
                f"--baseline: {path} holds neither {REPORT_NAME} nor {EVAL_RESULTS_NAME}; pass the output dir of a "
                "baseline `fairtune train` run (all debiasing weights 0) or of `fairtune evaluate` on the base model."
            )
        config_path = path / CONFIG_NAME
        source = path.name
    else:
        report_path = path
        config_path = path.parent / CONFIG_NAME
        source = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    report = _read_json(report_path, "--baseline")
    if report.get("fairtune_baseline_version"):  # already in baseline form (a copied baseline_report.json)
        return report
    if not _metric_keys(report):
        raise CardError(f"--baseline: {report_path} has no numeric metrics at its top level; is it a fairness report?")
    config = scrub_config(_read_json(config_path, "--baseline config")) if config_path.is_file() else {}
    return {
        "fairtune_baseline_version": 1,
        "source": source,
        "model": config.get("base_model_hub_id") or _display_name(config.get("model_name_or_path")),
        "debiased": bool(_enabled_methods(config)) if config else None,
        "evaluated_on": _where(report, config) if config else _where(report, {}),
        "report": report,
    }


def _display_name(name: Any) -> str | None:
    """A model or file name safe to print: Hub ids as they are, local paths reduced to their last part."""
    if not isinstance(name, str) or not name:
        return None
    return name if looks_like_hub_id(name) else Path(name).name or None


# --------------------------------------------------------------------------------------------------- hub ids


def looks_like_hub_id(name: Any) -> bool:
    """Whether `name` has the shape of a Hub repo id (`name` or `org/name`), not of a filesystem path."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".", "~")) or "\\" in name or ":" in name:
        return False
    if name.count("/") > 1:
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _is_local_path(name: str, search_roots: Iterable[Path]) -> bool:
    candidate = Path(name).expanduser()
    if candidate.is_absolute():
        return candidate.exists()
    return any((root / candidate).exists() for root in search_roots)


def _is_hub_dataset(name: Any, roots: Iterable[Path]) -> bool:
    """Whether a `dataset_name` names a Hub dataset (not `demo`, not a local folder)."""
    return name != "demo" and looks_like_hub_id(name) and not _is_local_path(name, [Path.cwd(), *roots])


def resolve_hub_id(name: Any, hub_id: Any = None, *, search_roots: Iterable[Path] = ()) -> str | None:
    """The Hub id to publish for a starting point: `hub_id` when valid, else `name` when it is not a local path."""
    if looks_like_hub_id(hub_id):
        return hub_id
    roots = [Path.cwd(), *search_roots]
    if looks_like_hub_id(name) and not _is_local_path(name, roots):
        return name
    return None


# --------------------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TaskInfo:
    """How a fairtune task is named on the Hub and in code."""

    key: str
    pipeline_tag: str
    pretty: str
    auto_class_suffix: str
    intended_use: str


TASKS = {
    "classification": TaskInfo(
        "classification",
        "text-classification",
        "Text classification",
        "SequenceClassification",
        "This model assigns one of its labels to a text (or a pair of texts).",
    ),
    "ner": TaskInfo(
        "ner",
        "token-classification",
        "Named entity recognition",
        "TokenClassification",
        "This model tags the entities in a text, token by token.",
    ),
    "qa": TaskInfo(
        "qa",
        "question-answering",
        "Extractive question answering",
        "QuestionAnswering",
        "This model extracts the answer to a question from a context passage.",
    ),
}
_TASK_ALIASES = {
    "text-classification": "classification",
    "sequence-classification": "classification",
    "token-classification": "ner",
    "question-answering": "qa",
    "extractive-qa": "qa",
}


def task_info(task: Any) -> TaskInfo:
    """The TaskInfo of a config's `task` field."""
    key = _TASK_ALIASES.get(str(task), str(task))
    if key not in TASKS:
        raise CardError(f"`task` in {CONFIG_NAME}: unknown task {task!r}; expected one of {', '.join(TASKS)}.")
    return TASKS[key]


@dataclass(frozen=True)
class ObjectiveInfo:
    """A fairness objective as the card describes it."""

    field: str
    name: str
    description: str
    settings: tuple[str, ...] = ()
    citations: tuple[str, ...] = ()
    tag: str | None = None


OBJECTIVES = (
    ObjectiveInfo(
        "dp_weight",
        "Demographic parity penalty",
        "penalises differences between groups in the average predicted probability of each class "
        "(a differentiable form of demographic parity).",
        citations=("dwork2012",),
        tag="demographic-parity",
    ),
    ObjectiveInfo(
        "eo_weight",
        "Equalized odds penalty",
        "penalises differences between groups in the average predicted probabilities among examples with the same "
        "true label (a differentiable form of equalized odds).",
        citations=("hardt2016",),
        tag="equalized-odds",
    ),
    ObjectiveInfo(
        "mindiff_weight",
        "MinDiff",
        "matches the distributions of model scores across groups with a kernel maximum mean discrepancy penalty.",
        settings=("mindiff_kernel", "mindiff_bandwidth", "mindiff_label"),
        citations=("prost2019",),
        tag="mindiff",
    ),
    ObjectiveInfo(
        "group_dro_weight",
        "Group DRO",
        "weights each group's loss by an online estimate of the worst-off groups, so training focuses on them.",
        settings=("group_dro_step_size",),
        citations=("sagawa2020",),
        tag="group-dro",
    ),
    ObjectiveInfo(
        "loss_parity_weight",
        "Loss parity",
        "penalises differences between groups in the average task loss.",
        tag="loss-parity",
    ),
    ObjectiveInfo(
        "clp_weight",
        "Counterfactual logit pairing",
        "penalises differences between the outputs for an example and for its counterfactual (protected terms "
        "swapped).",
        citations=("garg2019",),
        tag="counterfactual-logit-pairing",
    ),
    ObjectiveInfo(
        "adversary_weight",
        "Adversarial debiasing",
        "adversaries predict the protected group from the pooled representation; their gradient is reversed into "
        "the encoder, so the representation keeps less group information.",
        settings=("num_adversaries", "adversary_label_conditioned"),
        citations=("ganin2015",),
        tag="adversarial-debiasing",
    ),
)


@dataclass(frozen=True)
class MetricInfo:
    """How a report key is published: model-index type, display name, and which direction is better."""

    type: str
    name: str
    direction: int  # +1 higher is better, -1 lower is better, 0 neither
    args: dict[str, Any] | None = None


METRICS = {
    "accuracy": MetricInfo("accuracy", "Accuracy", +1),
    "macro_f1": MetricInfo("f1", "Macro F1", +1, {"average": "macro"}),
    "f1": MetricInfo("f1", "F1", +1),
    "exact_match": MetricInfo("exact_match", "Exact match", +1),
    "precision": MetricInfo("precision", "Precision", +1),
    "recall": MetricInfo("recall", "Recall", +1),
    "demographic_parity_difference": MetricInfo("demographic_parity_difference", "Demographic parity difference", -1),
    "equalized_odds_difference": MetricInfo("equalized_odds_difference", "Equalized odds difference", -1),
    "tpr_gap_rms": MetricInfo("tpr_gap_rms", "TPR gap (RMS over groups)", -1),
    "leakage_probe_accuracy": MetricInfo("leakage_probe_accuracy", "Leakage probe accuracy", -1),
    "demographic_parity_ratio": MetricInfo("demographic_parity_ratio", "Demographic parity ratio", +1),
    "equalized_odds_ratio": MetricInfo("equalized_odds_ratio", "Equalized odds ratio", +1),
    "flip_rate": MetricInfo("flip_rate", "Counterfactual flip rate", -1),
    "ctf_gap": MetricInfo("ctf_gap", "Counterfactual token fairness gap", -1),
    "leakage_probe_majority_baseline": MetricInfo(
        "leakage_probe_majority_baseline", "Leakage probe majority baseline", 0
    ),
}
_LOWER_IS_BETTER = ("gap", "difference", "diff", "disparity", "leakage", "bias", "violation", "inconsisten")
_HIGHER_IS_BETTER = ("accuracy", "f1", "exact", "precision", "recall", "auc", "consistency", "ratio")


def metric_info(key: str) -> MetricInfo:
    """The MetricInfo of a report key, with a readable fallback for keys fairtune does not know."""
    bare = re.sub(r"^(eval|test|validation)_", "", key)
    if bare in METRICS:
        return METRICS[bare]
    direction = (
        -1 if any(s in bare for s in _LOWER_IS_BETTER) else +1 if any(s in bare for s in _HIGHER_IS_BETTER) else 0
    )
    return MetricInfo(bare, bare.replace("_", " ").capitalize(), direction)


STANDARD_AXES = {
    "gender": ("gender", "sex", "male", "female", "man", "woman", "men", "women", "non-binary", "nonbinary"),
    "race/ethnicity": ("race", "ethnicity", "black", "white", "asian", "hispanic", "latino", "latina", "latinx"),
    "religion": ("religion", "christian", "muslim", "jewish", "hindu", "buddhist", "atheist"),
    "age": ("age", "young", "old", "elderly"),
    "disability": ("disability", "disabled"),
    "sexual orientation": ("sexual_orientation", "orientation", "sexuality", "gay", "lesbian", "bisexual", "lgbtq"),
    "nationality": ("nationality", "national_origin", "country"),
    "socioeconomic status": ("socioeconomic", "ses", "income", "class"),
}


# --------------------------------------------------------------------------------------------------- context


def _as_list(value: Any) -> list[str]:
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _cda_enabled(config: Mapping[str, Any]) -> bool:
    value = config.get("cda")
    if isinstance(value, str):
        return value.strip().lower() not in {"", "none", "off", "false", "no", "0"}
    return bool(value)


def _enabled_methods(config: Mapping[str, Any]) -> list[str]:
    methods = [obj.name for obj in OBJECTIVES if _positive(config.get(obj.field))]
    if _cda_enabled(config):
        methods.append("counterfactual data augmentation")
    if _group_balance(config):
        methods.append("group balancing")
    return methods


def _group_balance(config: Mapping[str, Any]) -> str | None:
    value = config.get("group_balance")
    return None if value in (None, False, "", "none", "no", 0) else str(value)


def _objectives(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for obj in OBJECTIVES:
        weight = config.get(obj.field)
        if not _positive(weight):
            continue
        citations = list(obj.citations)
        if obj.field == "adversary_weight" and config.get("adversary_label_conditioned"):
            citations.append("zhang2018")
        if (
            obj.field == "adversary_weight"
            and _is_number(config.get("num_adversaries"))
            and config["num_adversaries"] > 1
        ):
            citations.append("han2021")
        settings = {key: config[key] for key in obj.settings if config.get(key) is not None}
        rows.append(
            {
                "field": obj.field,
                "name": obj.name,
                "weight": weight,
                "description": obj.description,
                "settings": settings,
                "citations": citations,
                "tag": obj.tag,
            }
        )
    return rows


def _adversary(config: Mapping[str, Any]) -> dict[str, Any] | None:
    if not _positive(config.get("adversary_weight")):
        return None
    keys = [k for k in config if k.startswith("adversary_") or k == "num_adversaries"]
    return {key: config[key] for key in keys if config[key] is not None}


def _cda(config: Mapping[str, Any]) -> dict[str, Any]:
    lexicon_file = config.get("cda_lexicon")
    if config.get("cda_lexicon_version"):
        lexicon = str(config["cda_lexicon_version"])
    elif lexicon_file:
        lexicon = f"user lexicon `{_display_name(lexicon_file)}` (not versioned)"
    else:
        version = config.get("fairtune_version") or _package_version()
        lexicon = f"built-in lexicons of fairtune {version}"
    skip = {"cda_axes", "cda_lexicon", "cda_lexicon_version"}
    settings = {k: v for k, v in config.items() if k.startswith("cda_") and k not in skip and v is not None}
    return {
        "enabled": _cda_enabled(config),
        "mode": config.get("cda"),
        "axes": _as_list(config.get("cda_axes")),
        "lexicon": lexicon,
        "settings": settings,
        "citations": ["lu2020", "zmigrod2019"],
    }


def _where(report: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """Words for the data a report was measured on."""
    dataset = report.get("dataset") or config.get("dataset_name")
    split = report.get("split")
    count = f" ({report['num_examples']} examples)" if _is_number(report.get("num_examples")) else ""
    if split and dataset:
        return f"the `{split}` split of `{_display_name(dataset)}`{count}"
    for key, words in (("test_file", "the test file"), ("validation_file", "the validation file")):
        if config.get(key):
            return f"{words} `{_display_name(config[key])}`{count}"
    if dataset:
        return f"`{_display_name(dataset)}` (split not recorded)"
    return "the evaluation data of the training run (not recorded)"


def _ci(report: Mapping[str, Any] | None, key: str) -> list[float] | None:
    if not report:
        return None
    value = report.get(f"{key}_ci")
    intervals = report.get("intervals")  # results.json of `fairtune evaluate`
    if value is None and isinstance(intervals, Mapping):
        value = intervals.get(key)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
        return [float(value[0]), float(value[1])]
    return None


def is_result_metric(key: str) -> bool:
    """Whether a numeric top-level report key is a result (not a count, a loss, a timing or an adversary log)."""
    if key in _NOT_METRICS or key.endswith(("_ci", "_loss", "runtime", "_per_second")) or key == "loss":
        return False
    return not key.startswith(("adversary_", "train_", "total_flos"))


def _metric_keys(report: Mapping[str, Any] | None) -> list[str]:
    if not report:
        return []
    return [k for k, v in report.items() if _is_number(v) and is_result_metric(k)]


def _change(key: str, before: Any, after: Any, before_ci: Any, after_ci: Any) -> str:
    if not (_is_number(before) and _is_number(after)):
        return "n/a"
    delta = after - before
    if delta == 0:
        return "no change"
    direction = metric_info(key).direction
    text = f"{delta:+.4f}"
    if direction:
        text += " (better)" if delta * direction > 0 else " (worse)"
    if before_ci and after_ci:
        overlap = before_ci[0] <= after_ci[1] and after_ci[0] <= before_ci[1]
        text += "; intervals overlap" if overlap else "; intervals do not overlap"
    return text


def _results(run: RunFiles, baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    report = run.report
    before_report = (baseline or {}).get("report") or {}
    rows = []
    for key in _metric_keys(report):
        info = metric_info(key)
        after, after_ci = report[key], _ci(report, key)
        before = before_report.get(key) if _is_number(before_report.get(key)) else None
        before_ci = _ci(before_report, key)
        rows.append(
            {
                "key": key,
                "name": info.name,
                "after": after,
                "after_ci": after_ci,
                "before": before,
                "before_ci": before_ci,
                "change": _change(key, before, after, before_ci, after_ci),
            }
        )
    headline_names = {"accuracy": "accuracy", "macro_f1": "macro F1", "f1": "F1", "exact_match": "exact match"}
    headline = [f"{headline_names[r['key']]} {r['after']:.4f}" for r in rows if r["key"] in headline_names]
    headline += [
        f"a demographic parity difference of {r['after']:.4f}"
        for r in rows
        if r["key"] == "demographic_parity_difference"
    ]
    ci_note = None
    level = (report or {}).get("ci_level") or (report or {}).get("confidence_level")
    if isinstance((report or {}).get("interval_note"), str):
        ci_note = f"intervals in brackets: {report['interval_note']}"
    elif _is_number(level):
        ci_note = f"brackets give {level * 100 if level <= 1 else level:g}% confidence intervals"
    elif any(r["after_ci"] for r in rows):
        ci_note = "brackets give confidence intervals"
    baseline_view = None
    if baseline:
        description = f"`{baseline.get('source')}`"
        if baseline.get("model"):
            description += f", a run of `{baseline['model']}`"
        if baseline.get("debiased") is False:
            description += " trained without debiasing"
        elif baseline.get("debiased"):
            description += " (itself trained with some debiasing)"
        notes = []
        this_where = _where(report or {}, run.config)
        if baseline.get("evaluated_on") and baseline["evaluated_on"] != this_where:
            notes.append(
                f"**Check comparability**: the baseline was measured on {baseline['evaluated_on']}, "
                f"this model on {this_where}."
            )
        missing = [r["name"] for r in rows if r["before"] is None]
        if missing:
            notes.append(f"The baseline report has no value for: {', '.join(missing)}.")
        baseline_view = {"description": description, "notes": notes}
    return {
        "rows": rows,
        "where": _where(report or {}, run.config),
        "ci_note": ci_note,
        "baseline": baseline_view,
        "headline": _join(headline) if headline else None,
    }


def _join(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _phrase(name: str) -> str:
    """A method name inside a sentence: lower-cased unless it is a proper name (MinDiff, Group DRO)."""
    return name if any(c.isupper() for c in name[1:]) else name[0].lower() + name[1:]


def _evaluation(run: RunFiles, primary_keys: Iterable[str]) -> dict[str, Any]:
    if not run.evaluation:
        return {"rows": []}
    primary = set(primary_keys)
    before = (
        run.evaluation.get("baseline_metrics") if isinstance(run.evaluation.get("baseline_metrics"), Mapping) else {}
    )
    rows = []
    for key in _metric_keys(run.evaluation):
        if key in primary:
            continue
        after, after_ci = run.evaluation[key], _ci(run.evaluation, key)
        value = before.get(key) if _is_number(before.get(key)) else None
        rows.append(
            {
                "key": key,
                "name": metric_info(key).name,
                "after": after,
                "after_ci": after_ci,
                "before": value,
                "change": _change(key, value, after, None, after_ci),
            }
        )
    source = run.evaluation_path.relative_to(run.model_dir).as_posix() if run.evaluation_path else EVAL_RESULTS_NAME
    where = (
        _where(run.evaluation, run.config) if run.evaluation.get("split") or run.evaluation.get("dataset") else None
    )
    baseline = _display_name(run.evaluation.get("baseline")) if before else None
    note = run.evaluation.get("interval_note")
    return {"rows": rows, "source": source, "where": where, "baseline": baseline, "interval_note": note}


def _per_group(report: Mapping[str, Any] | None) -> dict[str, Any]:
    per_group = (report or {}).get("per_group")
    if not isinstance(per_group, Mapping) or not per_group:
        return {"columns": [], "rows": []}
    flat: dict[str, Mapping[str, Any]] = {}
    for name, value in per_group.items():
        if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
            for sub, stats in value.items():  # nested by axis: {"gender": {"female": {...}}}
                flat[f"{name}: {sub}"] = stats
        elif isinstance(value, Mapping):
            flat[str(name)] = value
        elif _is_number(value):
            flat[str(name)] = {"value": value}
    columns: list[str] = []
    for stats in flat.values():
        for key, value in stats.items():
            if key not in columns and (_is_number(value) or value is None):
                columns.append(key)
    columns.sort(key=lambda c: c not in COUNT_KEYS)
    rows = [{"group": group, "values": [stats.get(c) for c in columns]} for group, stats in flat.items()]
    return {"columns": columns, "rows": rows}


def _leakage(run: RunFiles, baseline: Mapping[str, Any] | None) -> dict[str, Any] | None:
    report = run.report or {}
    accuracy = report.get("leakage_probe_accuracy")
    if not _is_number(accuracy):
        return None
    majority = report.get("leakage_probe_majority_baseline")
    before = ((baseline or {}).get("report") or {}).get("leakage_probe_accuracy")
    return {
        "accuracy": accuracy,
        "accuracy_ci": _ci(report, "leakage_probe_accuracy"),
        "majority": majority if _is_number(majority) else None,
        "gap": accuracy - majority if _is_number(majority) else None,
        "at_majority": _at_majority(accuracy, majority, _ci(report, "leakage_probe_accuracy")),
        "before": before if _is_number(before) else None,
    }


def _at_majority(accuracy: float, majority: Any, interval: list[float] | None) -> bool | None:
    """Whether the probe does no better than the majority guess (within its interval, or within 0.01 without one)."""
    if not _is_number(majority):
        return None
    return interval[0] <= majority if interval else accuracy - majority <= 0.01


def _limitations(config: Mapping[str, Any], per_group: Mapping[str, Any]) -> dict[str, Any]:
    groups = [row["group"] for row in per_group["rows"]]
    words = [w.lower() for w in [*_as_list(config.get("cda_axes")), *_as_list(config.get("group_column"))]]
    words += [part for group in groups for part in re.split(r"[\s:_/,-]+", group.lower()) if part]
    covered = [axis for axis, keys in STANDARD_AXES.items() if any(w in keys or w == axis for w in words)]
    known = {k for keys in STANDARD_AXES.values() for k in keys} | set(STANDARD_AXES)
    covered += [a for a in _as_list(config.get("cda_axes")) if a.lower() not in known and a not in covered]
    small = []
    count_index = next((i for i, c in enumerate(per_group["columns"]) if c in COUNT_KEYS), None)
    if count_index is not None:
        small = [
            row["group"]
            for row in per_group["rows"]
            if _is_number(row["values"][count_index]) and row["values"][count_index] < SMALL_GROUP_THRESHOLD
        ]
    return {
        "groups": groups,
        "intersectional": len(_as_list(config.get("group_column"))) > 1,
        "axes_covered": covered,
        "axes_not_covered": [axis for axis in STANDARD_AXES if axis not in covered],
        "small_groups": small,
        "small_group_threshold": SMALL_GROUP_THRESHOLD,
    }


def _field_defaults() -> dict[str, Any]:
    """Declared default of every recipe field (JSON-normalized); never instantiates TrainingArguments."""
    # Instantiating TrainingArguments resets the global accelerator state: fatal inside a running trainer.
    import dataclasses

    from transformers import TrainingArguments

    classes: list[type] = []
    try:
        from fairtune import config as fairtune_config

        names = ("ModelArguments", "DataArguments", "FairTrainingArguments")
        classes = [getattr(fairtune_config, name) for name in names if hasattr(fairtune_config, name)]
    except ImportError:  # the config module is not needed to render a card
        classes = []
    defaults: dict[str, Any] = {}
    for cls in [TrainingArguments, *classes]:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = _normalized(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = _normalized(f.default_factory())
    return defaults


def _is_unset(value: Any) -> bool:
    """None, False, empty, or `none` (0 is a value: `mindiff_label: 0` means label 0)."""
    return value is None or value is False or value in ("", "none", [], {}, ["none"])


#: fields that TrainingArguments.__post_init__ fills in from others; not part of a recipe unless set explicitly
_DERIVED_FIELDS = frozenset({"logging_dir", "accelerator_config", "local_rank"})


def _differs(value: Any, default: Any) -> bool:
    value = _normalized(value)
    if value == default:
        return False
    return not (_is_unset(default) and _is_unset(value))  # an unset field that __post_init__ resolved


def _normalized(value: Any) -> Any:
    """A value as it reads back from JSON (enums as their value, tuples as lists)."""
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "value", str(v))))


def recipe_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config's fields that differ from their defaults: the recipe a user would write (paths shortened)."""
    defaults = _field_defaults()
    recipe = {}
    for key, value in config.items():
        if key.startswith("_") or key in META_KEYS or key in TOKEN_FIELDS or key in _DERIVED_FIELDS:
            continue
        if key in defaults:
            if not _differs(value, defaults[key]):
                continue
        elif _is_unset(value):  # a field whose default is unknown: leave out unset values
            continue
        recipe[key] = _publishable(value)
    return recipe


def _publishable(value: Any) -> Any:
    """A recipe value for the card: absolute local paths shortened to `<local>/name` (they mean nothing elsewhere)."""
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return f"<local>/{Path(value).name}"
    if isinstance(value, list):
        return [_publishable(v) for v in value]
    return value


def _citations(keys: Iterable[str], table: Mapping[str, Any]) -> list[dict[str, Any]]:
    seen: list[str] = []
    for key in keys:
        if key not in seen:
            if key not in table:
                raise CardError(f"citation {key!r} is missing from model_cards/{CITATIONS_FILE}.")
            seen.append(key)
    return [{"key": key, **table[key]} for key in seen]


# --------------------------------------------------------------------------------------------------- metadata


def build_card_data(run: RunFiles, *, model_name: str, objectives: list[dict[str, Any]]) -> ModelCardData:
    """The card's YAML metadata: library, tags, base model, datasets and the fairness results as eval results."""
    config = run.config
    task = task_info(config.get("task", "classification"))
    roots = [run.model_dir, run.model_dir.parent]
    peft = run.adapter_config is not None
    name = config.get("model_name_or_path") or (run.adapter_config or {}).get("base_model_name_or_path")
    base_model = resolve_hub_id(name, config.get("base_model_hub_id"), search_roots=roots)
    dataset = config.get("dataset_name")
    dataset_id = dataset if _is_hub_dataset(dataset, roots) else None

    tags = ["fairtune", "debiasing", task.pipeline_tag]
    tags += [obj["tag"] for obj in objectives if obj.get("tag")]
    if _cda_enabled(config):
        tags.append("counterfactual-data-augmentation")
    if peft:
        tags.append("peft")

    eval_results = []
    dataset_type = dataset_id or "custom"
    split = None
    if run.report:
        split = run.report.get("split")
    dataset_pretty = dataset_id or _display_name(config.get("test_file") or config.get("validation_file")) or "custom"
    for key in _metric_keys(run.report):
        info = metric_info(key)
        eval_results.append(
            EvalResult(
                task_type=task.pipeline_tag,
                task_name=task.pretty,
                dataset_type=dataset_type,
                dataset_name=dataset_pretty,
                dataset_config=config.get("dataset_config_name") if dataset_id else None,
                dataset_split=split,
                metric_type=info.type,
                metric_name=info.name,
                metric_value=float(f"{run.report[key]:.6g}"),
                metric_args=info.args,
            )
        )
    return ModelCardData(
        library_name="peft" if peft else "transformers",
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        pipeline_tag=task.pipeline_tag,
        tags=tags,
        metrics=sorted({r.metric_type for r in eval_results}) or None,
        model_name=model_name,
        eval_results=eval_results or None,
    )


# --------------------------------------------------------------------------------------------------- rendering


def template_dir() -> Path:
    """The folder holding the card templates, in a source checkout or an installed package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "model_cards", here.parent / "model_cards"):
        if (candidate / MAIN_TEMPLATE).is_file():
            return candidate
    raise CardError(f"model card templates not found (looked for {MAIN_TEMPLATE} next to the fairtune package).")


def _md(value: Any) -> str:
    """Escape a value for a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["md"] = _md
    return env


def build_card_context(
    run: RunFiles, *, baseline: Mapping[str, Any] | None = None, repo_id: str | None = None
) -> dict[str, Any]:
    """Everything the templates show, computed from the run's files and the baseline (never invented)."""
    config = run.config
    task = task_info(config.get("task", "classification"))
    objectives = _objectives(config)
    roots = [run.model_dir, run.model_dir.parent]
    peft = run.adapter_config is not None
    name = config.get("model_name_or_path") or (run.adapter_config or {}).get("base_model_name_or_path")
    hub_id = resolve_hub_id(name, config.get("base_model_hub_id"), search_roots=roots)
    base = {
        "hub_id": hub_id,
        "peft": peft,
        "display": f"[`{hub_id}`](https://huggingface.co/{hub_id})"
        if hub_id
        else "a local model (its Hub id was not recorded: set `base_model_hub_id` in the recipe to name it)",
    }
    id2label = (run.model_config or {}).get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=lambda k: int(k) if str(k).isdigit() else str(k))]
    dataset = config.get("dataset_name")
    local_files = [_display_name(config[k]) for k in ("train_file", "validation_file", "test_file") if config.get(k)]
    if dataset and dataset != "demo" and not _is_hub_dataset(dataset, roots):
        local_files.append(_display_name(dataset))
    group_columns = _as_list(config.get("group_column"))
    columns = [
        (label, config[key])
        for key, label in (("text_column", "Text column"), ("text_pair_column", "Second text column"))
        if config.get(key)
    ]
    columns += [("Label column", config["label_column"])] if config.get("label_column") else []
    if group_columns:
        label = "Group columns (intersectional groups)" if len(group_columns) > 1 else "Group column"
        columns.append((label, " × ".join(group_columns)))
    if config.get("group_from_lexicon"):
        columns.append(("Groups labelled from lexicon", config["group_from_lexicon"]))
    counts = config.get("group_counts")
    if isinstance(counts, Mapping) and isinstance(counts.get("train"), Mapping):  # counts per split
        counts = counts["train"]
    group_counts = [(str(k), v) for k, v in counts.items() if _is_number(v)] if isinstance(counts, Mapping) else []
    cda = _cda(config)
    per_group = _per_group(run.report)
    results = _results(run, baseline)
    citation_keys = [key for obj in objectives for key in obj["citations"]]
    if cda["enabled"]:
        citation_keys += cda["citations"]
    if run.thresholds:
        citation_keys.append("hardt2016")
    leakage = _leakage(run, baseline)
    if leakage:
        citation_keys.append("elazar2018")
    reported = set(_metric_keys(run.report)) | set(_metric_keys(run.evaluation))
    if "tpr_gap_rms" in reported:
        citation_keys.append("dearteaga2019")
    if "ctf_gap" in reported:
        citation_keys.append("garg2019")
    citations_table = yaml.safe_load((template_dir() / CITATIONS_FILE).read_text(encoding="utf-8"))
    citations = _citations(citation_keys, citations_table)
    methods = [obj["name"] for obj in objectives]
    if cda["enabled"]:
        methods.append("counterfactual data augmentation")
    if _group_balance(config):
        methods.append(f"group balancing ({_group_balance(config)})")
    if run.thresholds:
        methods.append("group-specific thresholds")
    token = current_token()
    command = config.get("command") or "(the command line was not recorded)"
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    recipe_yaml = yaml.safe_dump(recipe_fields(config), sort_keys=False, default_flow_style=False).strip()
    return {
        "model_name": (repo_id.split("/")[-1] if repo_id else run.model_dir.resolve().name),
        "repo_id": repo_id,
        "fairtune_version": config.get("fairtune_version") or _package_version(),
        "task": task,
        "base": base,
        "labels": labels,
        "methods": methods,
        "methods_phrase": _join([_phrase(m) for m in methods]) if methods else None,
        "remote_code": bool((run.model_config or {}).get("auto_map")) or bool(config.get("trust_remote_code")),
        "data": {
            "dataset_name": dataset if _is_hub_dataset(dataset, roots) else None,
            "dataset_config": config.get("dataset_config_name"),
            "local_files": local_files,
            "builtin_demo": dataset == "demo",
            "columns": columns,
            "group_counts": group_counts,
        },
        "objectives": objectives,
        "adversary": _adversary(config),
        "cda": cda,
        "group_balance": _group_balance(config),
        "thresholds": run.thresholds,
        "results": results,
        "evaluation": _evaluation(run, [r["key"] for r in results["rows"]]),
        "leakage": leakage,
        "per_group": per_group,
        "plots": run.plots,
        "limitations": _limitations(config, per_group),
        "reproduce": {
            "command": redact_secrets(str(command), (token,)),
            "recipe_yaml": redact_secrets(recipe_yaml or "{}", (token,)),
        },
        "citations": citations,
        "citations_by_key": {entry["key"]: entry for entry in citations},
    }


def _package_version() -> str:
    from fairtune import __version__

    return __version__


def render_model_card(
    model_dir: str | os.PathLike,
    *,
    baseline: str | os.PathLike | Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    templates: str | os.PathLike | None = None,
) -> ModelCard:
    """Render the card of a trained model dir (baseline: a path, an already loaded baseline, or the saved one)."""
    run = load_run(model_dir)
    if baseline is None and (run.model_dir / BASELINE_NAME).is_file():
        baseline = _read_json(run.model_dir / BASELINE_NAME, BASELINE_NAME)
    elif baseline is not None and not isinstance(baseline, Mapping):
        baseline = load_baseline(baseline, model_dir=run.model_dir)
    context = build_card_context(run, baseline=baseline, repo_id=repo_id)
    card_data = build_card_data(run, model_name=context["model_name"], objectives=context["objectives"])
    env = _environment(Path(templates) if templates else template_dir())
    text = env.get_template(MAIN_TEMPLATE).render(card_data=card_data.to_yaml(), **context)
    text = redact_secrets(re.sub(r"\n{3,}", "\n\n", text), (current_token(),))
    return ModelCard(text)


def write_model_card(output_dir: str | os.PathLike, *, baseline: str | os.PathLike | None = None) -> Path:
    """Render `output_dir/README.md` (and save a named baseline as `baseline_report.json` for later renders)."""
    root = Path(output_dir)
    loaded = None
    if baseline is not None:
        loaded = load_baseline(baseline, model_dir=root)
    card = render_model_card(root, baseline=loaded)
    if loaded is not None:
        text = redact_secrets(json.dumps(loaded, indent=2, sort_keys=False), (current_token(),))
        (root / BASELINE_NAME).write_text(text + "\n", encoding="utf-8")
    path = root / CARD_NAME
    card.save(path)
    logger.info("Wrote model card %s", path)
    return path
