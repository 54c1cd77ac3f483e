"""The counterfactual probe on real (tiny, trained) models: flip rate and score gap from logged texts only."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_tiny_bert
from test_monitor_logs import write_jsonl

from fairtune.cli import main
from fairtune.monitor import FairnessMonitor, MonitorConfig
from fairtune.monitor.probe import ProbeModel

VERBS = ("works", "reads books", "likes music", "cares", "builds bridges")


def _train(path, label_of, steps=40):
    """A tiny BERT fitted to `label_of(pronoun, verb)` on 'PRON VERB at the hospital' texts, saved to `path`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    make_tiny_bert(path)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    texts = [(p, v) for p in ("she", "he") for v in VERBS]
    enc = tok([f"{p} {v} at the hospital" for p, v in texts], padding=True, return_tensors="pt")
    labels = torch.tensor([label_of(p, v) for p, v in texts])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gendered_model(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("gendered"), lambda p, v: int(p == "she"))


@pytest.fixture(scope="module")
def fair_model(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("fair"), lambda p, v: int(v in ("works", "cares")))


def _text_logs(folder, days=(1, 2), n=300):
    """Logs with only a timestamp, a score and the text: no labels, no groups."""
    for day in days:
        rows = [
            {
                "timestamp": f"2024-01-0{day}T{i % 24:02d}:00:00",
                "score": 0.5,
                "text": f"{'she' if i % 2 else 'he'} {VERBS[i % len(VERBS)]} at the hospital",
            }
            for i in range(n)
        ]
        write_jsonl(folder / f"day{day}.jsonl", rows)
    return folder


def _run(tmp_path, model_dir, out, *extra):
    rc = main(
        [
            "monitor",
            "--logs",
            str(tmp_path / "logs" / "*.jsonl"),
            "--output",
            str(tmp_path / out),
            "--model-dir",
            str(model_dir),
            "--no-plots",
            "--min-window-rows",
            "100",
            *extra,
        ]
    )
    return rc, json.loads((tmp_path / out / "monitor.json").read_text())


def test_probe_flip_rate_separates_a_gendered_model_from_a_fair_one(tmp_path, gendered_model, fair_model):
    _text_logs(tmp_path / "logs")
    _, biased = _run(tmp_path, gendered_model, "biased", "--probe-size", "40")
    _, fair = _run(tmp_path, fair_model, "fair", "--probe-size", "40")
    for w in biased["windows"]:
        assert w["probe"]["n_pairs"] == 40
        assert w["probe"]["flip_rate"] >= 0.9 and w["probe"]["ctf_gap"] > 0.3
        lo, hi = w["probe"]["intervals"]["flip_rate"]
        assert lo <= w["probe"]["flip_rate"] <= hi
    for w in fair["windows"]:
        assert w["probe"]["flip_rate"] <= 0.1
    assert biased["groups"] == ["text"]  # groups came from the text; no label column at all
    assert all("equalized_odds_difference" not in w["metrics"] for w in biased["windows"])


def test_probe_constraint_alerts_and_the_probe_is_reproducible(tmp_path, gendered_model):
    _text_logs(tmp_path / "logs")
    rc, first = _run(tmp_path, gendered_model, "a", "--probe-size", "40", "--alert", "flip_rate<=0.2")
    _, again = _run(tmp_path, gendered_model, "b", "--probe-size", "40", "--alert", "flip_rate<=0.2")
    assert rc == 3
    assert {a["window"] for a in first["alerts"] if a["metric"] == "flip_rate"} == {"2024-01-01", "2024-01-02"}
    assert [w["probe"] for w in first["windows"]] == [w["probe"] for w in again["windows"]]


def test_probe_tops_up_a_window_across_runs_and_stops_at_the_size(tmp_path, gendered_model):
    logs = tmp_path / "logs"
    _text_logs(logs, days=(1,), n=60)  # 60 texts: fewer pairs than wanted
    _, first = _run(tmp_path, gendered_model, "out", "--probe-size", "100")
    assert first["windows"][0]["probe"]["n_pairs"] == 60
    _text_logs(logs, days=(1,), n=200)  # the same file grows
    _, second = _run(tmp_path, gendered_model, "out", "--probe-size", "100")
    assert second["rows_processed"] == 140 and second["windows"][0]["probe"]["n_pairs"] == 100


def test_texts_without_protected_terms_give_no_probe(tmp_path, gendered_model):
    rows = [{"timestamp": "2024-01-01T00:00:00", "score": 0.5, "text": "the plot is boring"}] * 200
    write_jsonl(tmp_path / "logs" / "d.jsonl", rows)
    _, report = _run(tmp_path, gendered_model, "out")
    assert report["windows"][0]["probe"] is None


def test_probe_model_scores_like_the_classifier(gendered_model):
    model = ProbeModel.load(gendered_model)
    probs = model.probs(["she works at the hospital", "he works at the hospital"])
    assert probs.shape == (2, 2) and probs[0, 1] > 0.5 > probs[1, 1]
    with FairnessMonitor(MonitorConfig(window="100", probe_size=5), model=model) as monitor:
        monitor.update([{"score": 0.5, "text": "she works at the hospital"}] * 10)
        assert monitor.report()["windows"][0]["probe"]["n_pairs"] == 5


def test_reference_texts_are_scored_with_the_model(tmp_path, gendered_model):
    _text_logs(tmp_path / "logs", days=(1,), n=300)
    ref = tmp_path / "test_split.jsonl"
    write_jsonl(ref, [{"text": "he works at the hospital", "group": "male"}] * 150)  # the model scores 'he' low
    rc, report = _run(tmp_path, gendered_model, "out", "--reference", str(ref), "--probe-size", "0")
    assert report["reference"] == {"kind": "file", "path": str(ref), "rows": 150}
    score = report["windows"][0]["drift"]["score"]["(all)"]
    assert score["reference_mean"] < score["window_mean"] - 0.2 and score["ks"] > 0.3
