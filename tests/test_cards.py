"""Model cards: rendering from a trained model dir, metadata round-trip, base model rules, baselines, secrets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from fairtune import cards
from fairtune.cards import CardError, render_model_card, write_model_card

FAKE_TOKEN = "hf_" + "FakeTokenForFairtuneTests0123456789"
BASE_HUB_ID = "google-bert/bert-base-uncased"
LABELS = {0: "negative", 1: "positive"}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "nurse", "doctor", "he", "she", "said", "good", "bad"]

REPORT = {
    "split": "test",
    "num_examples": 848,
    "loss": 0.4123,
    "runtime": 1.52,
    "samples_per_second": 557.9,
    "adversary_loss": 0.6931,
    "ci_level": 0.95,
    "accuracy": 0.8512,
    "accuracy_ci": [0.8301, 0.8702],
    "macro_f1": 0.8433,
    "demographic_parity_difference": 0.0421,
    "demographic_parity_difference_ci": [0.0203, 0.0655],
    "equalized_odds_difference": 0.0612,
    "tpr_gap_rms": 0.0311,
    "leakage_probe_accuracy": 0.5712,
    "leakage_probe_majority_baseline": 0.5523,
    "per_group": {
        "female": {"count": 420, "accuracy": 0.8571, "tpr": 0.8120, "fpr": 0.1012, "selection_rate": 0.48},
        "male": {"count": 391, "accuracy": 0.8465, "tpr": 0.8301, "fpr": 0.1100, "selection_rate": 0.51},
        "non-binary": {"count": 37, "accuracy": 0.8108, "tpr": 0.7500, "fpr": 0.1304, "selection_rate": 0.43},
    },
}
EVAL_RESULTS = {  # `fairtune evaluate --model RUN --baseline BASE --output RUN/eval`
    "model": "outputs/bert-debiased",
    "baseline": "/home/someone/models/bert-base-uncased",
    "date": "2025-01-01T00:00:00",
    "settings": {"n_bootstrap": 1000, "confidence": 0.95, "seed": 0, "batch_size": 32},
    "interval_note": "95% percentile bootstrap, 1000 resamples of rows",
    "suites": ["counterfactual", "stereoset"],
    "accuracy": 0.8512,
    "counterfactual_consistency": 0.9731,
    "stereoset_ss": 0.5412,
    "intervals": {"counterfactual_consistency": [0.9650, 0.9802]},
    "details": {},
    "baseline_metrics": {"counterfactual_consistency": 0.9012, "stereoset_ss": 0.6120},
    "plots": ["counterfactual.png"],
}
BASELINE_REPORT = {
    "split": "test",
    "num_examples": 848,
    "loss": 0.4123,
    "runtime": 1.52,
    "samples_per_second": 557.9,
    "adversary_loss": 0.6931,
    "ci_level": 0.95,
    "accuracy": 0.8601,
    "accuracy_ci": [0.8400, 0.8790],
    "macro_f1": 0.8550,
    "demographic_parity_difference": 0.1534,
    "demographic_parity_difference_ci": [0.1210, 0.1850],
    "equalized_odds_difference": 0.1702,
    "tpr_gap_rms": 0.0954,
    "leakage_probe_accuracy": 0.8123,
    "leakage_probe_majority_baseline": 0.5523,
}


def fairtune_config(output_dir: Path, **overrides) -> dict:
    """A resolved recipe as `fairtune train` saves it: every TrainingArguments field plus fairtune's fields."""
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(output_dir), learning_rate=3e-5, num_train_epochs=3, seed=13)
    config = {key: value for key, value in args.to_dict().items() if key != "hub_token"}
    config.update(
        {
            "model_name_or_path": BASE_HUB_ID,
            "task": "classification",
            "dataset_name": "fairtune/bias-in-bios-demo",
            "train_file": None,
            "validation_file": None,
            "test_file": None,
            "text_column": "text",
            "label_column": "label",
            "group_column": "gender",
            "cda": "two_sided",
            "cda_axes": ["gender"],
            "cda_seed": 0,
            "cda_lexicon": None,
            "dp_weight": 0.0,
            "eo_weight": 0.0,
            "mindiff_weight": 0.0,
            "mindiff_kernel": "gaussian",
            "mindiff_bandwidth": 0.1,
            "group_dro_weight": 0.0,
            "group_dro_step_size": 0.01,
            "loss_parity_weight": 0.0,
            "clp_weight": 0.5,
            "adversary_weight": 1.0,
            "adversary_hidden_size": 64,
            "adversary_layers": 2,
            "adversary_lr": 1e-3,
            "adversary_label_conditioned": True,
            "num_adversaries": 3,
            "adversary_orthogonality_weight": 0.1,
            "adversary_schedule": "ganin",
            "group_balance": "none",
            "leakage_probe": True,
            "group_names": ["female", "male", "non-binary"],
            "label_list": ["negative", "positive"],
            "group_counts": {"female": 1710, "male": 1622, "non-binary": 151},
            "command": "fairtune train recipes/classification/bert-adversary.yaml --learning_rate 3e-5",
            "fairtune_version": "0.1.0",
        }
    )
    config.update(overrides)
    return config


def make_model_dir(
    root: Path,
    *,
    peft: bool = False,
    config: dict | None = None,
    report: dict | None = REPORT,
    training_state: bool = True,
) -> Path:
    """A tiny `fairtune train` output dir: weights, tokenizer, config, reports, plots, eval dir and checkpoints."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    root.mkdir(parents=True, exist_ok=True)
    vocab = root.parent / f"{root.name}-vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(root)
    bert_config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    model = BertForSequenceClassification(bert_config)
    if peft:
        from peft import LoraConfig, get_peft_model

        model.name_or_path = str(root.parent / "local-base-model")
        model = get_peft_model(model, LoraConfig(r=2, target_modules=["query", "value"], task_type="SEQ_CLS"))
    model.save_pretrained(root)
    (root / "fairtune_config.json").write_text(json.dumps(config or fairtune_config(root), indent=2), encoding="utf-8")
    if report is not None:
        (root / "fairness_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        (root / "fairness_report.md").write_text("# Fairness report\n\n| metric | value |\n", encoding="utf-8")
    (root / "group_metrics.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    evaluation = root / "eval"
    evaluation.mkdir()
    (evaluation / "results.json").write_text(json.dumps(EVAL_RESULTS), encoding="utf-8")
    (evaluation / "per_group.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    if training_state:
        checkpoint = root / "checkpoint-1"
        checkpoint.mkdir()
        for name in ("model.safetensors", "config.json"):
            if (root / name).exists():
                shutil.copy2(root / name, checkpoint / name)
        for name in (
            "fairtune_adversary.safetensors",
            "fairtune_state.json",
            "optimizer.pt",
            "scheduler.pt",
            "rng_state.pth",
            "rng_state_1.pth",
            "trainer_state.json",
            "training_args.bin",
        ):
            (checkpoint / name).write_bytes(b"training state")
        for name in ("training_args.bin", "trainer_state.json", "fairtune_adversary.safetensors", "optimizer.pt"):
            (root / name).write_bytes(b"training state")
        (root / "runs").mkdir()
        (root / "runs" / "events.out.tfevents.1").write_bytes(b"events")
    return root


@pytest.fixture(scope="session")
def _model_template(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("template") / "run")


@pytest.fixture
def model_dir(_model_template, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the tiny trained model dir, with a (fake) Hub token in the environment."""
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    target = tmp_path / "bert-debiased"
    shutil.copytree(_model_template, target)
    return target


def rewrite_config(model_dir: Path, **overrides) -> None:
    """Change fields of the saved fairtune_config.json."""
    path = model_dir / "fairtune_config.json"
    config = json.loads(path.read_text())
    config.update(overrides)
    path.write_text(json.dumps(config))


def make_baseline(root: Path, report: dict = BASELINE_REPORT) -> Path:
    """A baseline run dir: same recipe with every debiasing method off, and its fairness report."""
    root.mkdir(parents=True)
    config = fairtune_config(root, cda="none", clp_weight=0.0, adversary_weight=0.0, adversary_label_conditioned=False)
    (root / "fairtune_config.json").write_text(json.dumps(config))
    (root / "fairness_report.json").write_text(json.dumps(report))
    return root


# --------------------------------------------------------------------------------------------------- rendering


def test_card_renders_every_section(model_dir):
    path = write_model_card(model_dir)
    assert path == model_dir / "README.md"
    text = path.read_text()
    for heading in (
        "# bert-debiased",
        "## Model details",
        "## Training data",
        "## Debiasing method",
        "### Adversary",
        "### Counterfactual data augmentation",
        "## Results",
        "### Leakage probe",
        "### Per group",
        "### Further evaluation",
        "## Intended use",
        "## Limitations",
        "## How to reproduce",
        "## Citations",
    ):
        assert heading in text, heading
    # base model, task, data
    assert f"[`{BASE_HUB_ID}`](https://huggingface.co/{BASE_HUB_ID})" in text
    assert "Text classification" in text and "negative, positive" in text
    assert "fairtune/bias-in-bios-demo" in text and "Group column: `gender`" in text
    # objectives with weights, adversary settings, CDA mode/axes/lexicon
    assert "| Adversarial debiasing | `adversary_weight` | 1.0000 |" in text
    assert "| Counterfactual logit pairing | `clp_weight` | 0.5000 |" in text
    assert "Group DRO" not in text and "MinDiff" not in text  # weight 0: not used, not described
    assert "| `adversary_hidden_size` | 64 |" in text and "| `num_adversaries` | 3 |" in text
    assert "| Mode | `two_sided` |" in text and "| Axes | gender |" in text
    assert "| Lexicon version | built-in lexicons of fairtune 0.1.0 |" in text and "| `cda_seed` | `0` |" in text
    # results with CIs, no baseline, leakage probe
    assert "95% confidence intervals" in text
    assert "| Demographic parity difference | 0.0421 | [0.0203, 0.0655] |" in text
    main_results = text.split("## Results")[1].split("### Leakage probe")[0]
    assert "No baseline was given" in main_results and "| Before |" not in main_results
    assert "reaches **0.5712**" in text and "majority-class baseline of 0.5523 (gap +0.0189)" in text
    # per-group table, evaluation extras, plots
    assert "| non-binary | 37 | 0.8108 | 0.7500 | 0.1304 | 0.4300 |" in text
    assert "Examples per group: female 1710, male 1622, non-binary 151" in text
    assert "| Counterfactual consistency | 0.9012 | 0.9731 [0.9650, 0.9802] | +0.0719 (better) |" in text
    assert "named in `fairtune evaluate --baseline`: `bert-base-uncased`" in text and "/home/someone" not in text
    assert "![group_metrics.png](group_metrics.png)" in text and "![eval/per_group.png](eval/per_group.png)" in text
    # diagnostics are not results
    for diagnostic in ("Loss", "Runtime", "Samples per second", "Adversary loss"):
        assert f"| {diagnostic} |" not in text, diagnostic
    # limitations name the axes not covered and small groups
    assert "**Not covered**: race/ethnicity, religion, age, disability" in text
    assert "gender" not in text.split("**Not covered**")[1].split("\n")[0]
    assert "fewer than 100) for: non-binary" in text
    # reproduce: exact command and the non-default recipe fields
    assert "fairtune train recipes/classification/bert-adversary.yaml --learning_rate 3e-5" in text
    assert 'pip install "fairtune==0.1.0"' in text
    recipe = text.split("```yaml\n")[1].split("```")[0]
    assert "adversary_weight: 1.0" in recipe and "learning_rate: 3.0e-05" in recipe
    assert "hub_token" not in recipe and "command:" not in recipe
    assert "AutoModelForSequenceClassification" in text


def test_citations_only_for_methods_used(model_dir):
    text = render_model_card(model_dir).text
    used = ("Ganin & Lempitsky (2015)", "Zhang et al. (2018)", "Garg et al. (2019)", "Lu et al. (2020)")
    for short in used + ("Zmigrod et al. (2019)", "Elazar & Goldberg (2018)"):
        assert short in text, short
    for absent in ("Sagawa", "Prost", "Hardt", "Dwork"):
        assert absent not in text, absent
    assert "@inproceedings{ganin2015unsupervised," in text

    rewrite_config(model_dir, adversary_weight=0.0, clp_weight=0.0, cda="none", group_dro_weight=0.3, mindiff_weight=2)
    text = render_model_card(model_dir).text
    assert "Sagawa et al. (2020)" in text and "Prost et al. (2019)" in text
    assert "`group_dro_step_size=0.01`" in text and "`mindiff_kernel=gaussian`" in text
    for absent in ("Ganin", "Zhang", "Garg", "Lu et al.", "Zmigrod", "### Adversary"):
        assert absent not in text, absent
    assert "### Counterfactual data augmentation\n\nNot used." in text


def test_thresholds_file_cites_hardt(model_dir):
    (model_dir / "group_thresholds.json").write_text(json.dumps({"female": 0.48, "male": 0.52}))
    text = render_model_card(model_dir).text
    assert "### Group-specific decision thresholds" in text and "`group_thresholds.json`" in text
    assert "Hardt et al. (2016)" in text


def test_metadata_round_trips_through_modelcard_load(model_dir):
    data = ModelCard.load(write_model_card(model_dir)).data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification"
    assert {"fairtune", "debiasing", "text-classification"} <= set(data.tags)
    assert {"adversarial-debiasing", "counterfactual-logit-pairing", "counterfactual-data-augmentation"} <= set(
        data.tags
    )
    assert data.base_model == BASE_HUB_ID
    assert data.datasets == ["fairtune/bias-in-bios-demo"]
    assert data.model_name == "bert-debiased"
    results = {r.metric_type: r for r in data.eval_results}
    assert results["demographic_parity_difference"].metric_value == pytest.approx(0.0421)
    assert results["equalized_odds_difference"].metric_value == pytest.approx(0.0612)
    assert results["tpr_gap_rms"].metric_value == pytest.approx(0.0311)
    assert results["leakage_probe_accuracy"].metric_value == pytest.approx(0.5712)
    assert results["accuracy"].metric_value == pytest.approx(0.8512)
    assert results["f1"].metric_name == "Macro F1" and results["f1"].metric_args == {"average": "macro"}
    for result in data.eval_results:
        assert result.task_type == "text-classification"
        assert result.dataset_type == "fairtune/bias-in-bios-demo"
        assert result.dataset_split == "test"
    assert "per_group" not in results and "ci_level" not in results


def test_card_without_report_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    run = make_model_dir(tmp_path / "run", report=None, training_state=False)
    card = ModelCard.load(write_model_card(run))
    assert "No fairness report was found" in card.text
    assert card.data.eval_results is None
    assert "model-index" not in card.content.split("---")[1]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, BASE_HUB_ID),  # a Hub id as the starting point
        ({"model_name_or_path": "bert-base-uncased"}, "bert-base-uncased"),  # a canonical id without namespace
        ({"model_name_or_path": "LOCAL", "base_model_hub_id": BASE_HUB_ID}, BASE_HUB_ID),  # local, id known
        ({"model_name_or_path": "LOCAL"}, None),  # local, id unknown: left out (the Hub rejects a path)
        ({"model_name_or_path": "LOCAL_RELATIVE"}, None),  # a relative path that exists next to the run
        ({"model_name_or_path": "/does/not/exist/model"}, None),  # an absolute path never is a Hub id
        ({"model_name_or_path": "LOCAL", "base_model_hub_id": "not a/valid//id"}, None),
    ],
)
def test_base_model_rules(model_dir, overrides, expected):
    local = model_dir.parent / "my-models" / "bert-start"
    local.mkdir(parents=True)
    replace = {"LOCAL": str(local), "LOCAL_RELATIVE": "my-models/bert-start"}
    rewrite_config(model_dir, **{k: replace.get(v, v) for k, v in overrides.items()})
    card = ModelCard.load(write_model_card(model_dir))
    assert card.data.base_model == expected
    metadata = card.content.split("---")[1]
    if expected is None:
        assert "base_model" not in metadata
        assert "a local model (its Hub id was not recorded" in card.text
        assert str(local) not in card.content  # a local path is never published
    else:
        assert f"base_model: {expected}" in metadata


def test_local_dataset_files_are_named_not_published(model_dir):
    data_dir = model_dir.parent / "data"
    rewrite_config(
        model_dir,
        dataset_name=None,
        train_file=str(data_dir / "train.csv"),
        test_file=str(data_dir / "test.csv"),
    )
    card = ModelCard.load(write_model_card(model_dir))
    assert card.data.datasets is None
    assert "`train.csv`, `test.csv`" in card.text and str(data_dir) not in card.content
    assert {r.dataset_type for r in card.data.eval_results} == {"custom"}
    assert {r.dataset_name for r in card.data.eval_results} == {"test.csv"}


@pytest.mark.parametrize(
    ("task", "pipeline_tag", "auto_class"),
    [("ner", "token-classification", "TokenClassification"), ("qa", "question-answering", "QuestionAnswering")],
)
def test_task_sets_pipeline_tag_and_usage(model_dir, task, pipeline_tag, auto_class):
    rewrite_config(model_dir, task=task)
    card = ModelCard.load(write_model_card(model_dir))
    assert card.data.pipeline_tag == pipeline_tag and pipeline_tag in card.data.tags
    assert {r.task_type for r in card.data.eval_results} == {pipeline_tag}
    assert f"AutoModelFor{auto_class}" in card.text


def test_unknown_task_names_the_field(model_dir):
    rewrite_config(model_dir, task="summarization")
    with pytest.raises(CardError, match="`task`.*summarization.*classification, ner, qa"):
        write_model_card(model_dir)


# --------------------------------------------------------------------------------------------------- baseline


def test_baseline_gives_before_and_after(model_dir, tmp_path):
    baseline = make_baseline(tmp_path / "baseline-run")
    text = write_model_card(model_dir, baseline=baseline).read_text()
    assert "| Metric | Before | After | Change |" in text
    row = next(line for line in text.splitlines() if line.startswith("| Demographic parity difference |"))
    assert row == (
        "| Demographic parity difference | 0.1534 [0.1210, 0.1850] | 0.0421 [0.0203, 0.0655] "
        "| -0.1113 (better); intervals do not overlap |"
    )
    row = next(line for line in text.splitlines() if line.startswith("| Accuracy |"))
    assert "-0.0089 (worse); intervals overlap" in row
    assert "`baseline-run`, a run of `google-bert/bert-base-uncased` trained without debiasing" in text
    assert "Baseline probe accuracy: 0.8123." in text
    assert "No baseline was given" not in text
    # the baseline is kept with the model, so later renders (and the upload) carry the same "before" numbers
    saved = json.loads((model_dir / "baseline_report.json").read_text())
    assert saved["report"]["demographic_parity_difference"] == 0.1534
    assert "| Demographic parity difference | 0.1534" in render_model_card(model_dir).text
    # the baseline's own eval results never become this model's metadata
    results = {r.metric_type: r.metric_value for r in ModelCard.load(model_dir / "README.md").data.eval_results}
    assert results["demographic_parity_difference"] == pytest.approx(0.0421)


def test_baseline_report_file_and_missing_metrics(model_dir, tmp_path):
    partial = {k: v for k, v in BASELINE_REPORT.items() if k != "tpr_gap_rms"}
    report = tmp_path / "base-eval" / "fairness_report.json"
    report.parent.mkdir()
    report.write_text(json.dumps(partial))
    text = write_model_card(model_dir, baseline=report).read_text()
    assert "`base-eval/fairness_report.json`" in text
    assert "The baseline report has no value for: TPR gap (RMS over groups)." in text
    row = next(line for line in text.splitlines() if line.startswith("| TPR gap"))
    assert row.startswith("| TPR gap (RMS over groups) | n/a | 0.0311 |")


def test_baseline_on_other_data_is_flagged(model_dir, tmp_path):
    baseline = make_baseline(tmp_path / "other", report={**BASELINE_REPORT, "split": "validation"})
    text = write_model_card(model_dir, baseline=baseline).read_text()
    assert "**Check comparability**: the baseline was measured on the `validation` split" in text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "--baseline: .* does not exist"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "--baseline: .* holds neither fairness_report"),
        (lambda tmp: (tmp / "x.json").write_text('{"note": "no metrics"}') and tmp / "x.json", "no numeric metrics"),
        (lambda tmp: (tmp / "bad.json").write_text("{not json") and tmp / "bad.json", "not valid JSON"),
    ],
)
def test_bad_baseline_names_the_flag(model_dir, tmp_path, make, message):
    with pytest.raises(CardError, match=message):
        write_model_card(model_dir, baseline=make(tmp_path))
    assert not (model_dir / "README.md").exists()


def test_baseline_cannot_be_the_model_itself(model_dir):
    with pytest.raises(CardError, match="the model dir itself"):
        write_model_card(model_dir, baseline=model_dir)


# --------------------------------------------------------------------------------------------------- secrets, errors


def test_token_never_written(model_dir, tmp_path):
    rewrite_config(
        model_dir,
        hub_token=FAKE_TOKEN,
        command=f"HF_TOKEN={FAKE_TOKEN} fairtune train recipe.yaml --hub_token {FAKE_TOKEN} --seed 13",
    )
    write_model_card(model_dir, baseline=make_baseline(tmp_path / "baseline"))
    for name in ("README.md", "baseline_report.json"):
        text = (model_dir / name).read_text()
        assert FAKE_TOKEN not in text and "hf_Fake" not in text, name
    text = (model_dir / "README.md").read_text()
    assert "HF_TOKEN=<redacted> fairtune train recipe.yaml --hub_token <redacted> --seed 13" in text
    assert cards.find_secret(text) is None


def test_redact_secrets_keeps_ordinary_token_words():
    text = 'pad_token: "[PAD]"\nmax_tokens: 3\n--hub-token=abc --token xyz\n"hub_token": "secret" hf_abcdefghijklmnopqrstu'
    redacted = cards.redact_secrets(text)
    assert 'pad_token: "[PAD]"' in redacted and "max_tokens: 3" in redacted
    assert "abc" not in redacted and "xyz" not in redacted and "secret" not in redacted
    assert "hf_abcdefghijklmnopqrstu" not in redacted
    assert cards.find_secret('"hub_token": null') is None
    assert cards.find_secret('"hub_token": "abc"') is not None


def test_errors_name_the_flag(tmp_path):
    with pytest.raises(CardError, match="--model-dir: .* is not a directory"):
        write_model_card(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CardError, match="--model-dir: .* has no fairtune_config.json"):
        write_model_card(tmp_path / "empty")


def test_cli_card_command(model_dir, tmp_path, capsys):
    from fairtune.cli import main

    assert main(["card", "--model-dir", str(model_dir)]) == 0
    assert (model_dir / "README.md").is_file()
    assert "Wrote" in capsys.readouterr().out
    assert main(["card", "--model-dir", str(tmp_path / "missing")]) == 2
    assert "--model-dir" in capsys.readouterr().err


def test_metric_names_and_directions():
    assert cards.metric_info("eval_demographic_parity_difference").direction == -1
    assert cards.metric_info("counterfactual_consistency").direction == +1
    assert cards.metric_info("leakage_probe_majority_baseline").direction == 0
    assert cards.metric_info("macro_f1").type == "f1"


def test_templates_are_found():
    folder = cards.template_dir()
    assert (folder / cards.MAIN_TEMPLATE).is_file() and (folder / cards.CITATIONS_FILE).is_file()


def test_rendering_leaves_the_accelerator_state_alone(model_dir):
    # the trainer writes the card mid-run: building a TrainingArguments here would reset the accelerator state
    from accelerate.state import PartialState

    PartialState(cpu=True)
    before = dict(PartialState._shared_state)
    write_model_card(model_dir)
    assert PartialState._shared_state == before


def test_adversary_on_the_predictions_is_described_as_such(model_dir):
    text = render_model_card(model_dir).text
    assert "from the pooled representation" in text and "predicted class probabilities" not in text
    rewrite_config(
        model_dir,
        adversary_input="logits",
        adversary_label_conditioned=False,
        adversary_balance=True,
        adversary_steps=5,
    )
    text = render_model_card(model_dir).text
    assert "predicted class probabilities" in text and "from the pooled representation" not in text
    assert "Zhang et al. (2018)" in text  # cited for the architecture even without label conditioning
    assert "`adversary_input=logits`" in text and "`adversary_steps=5`" in text
