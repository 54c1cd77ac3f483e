"""FairTrainer.push_to_hub uploads the debiased model with fairtune's card, never the adversary or training state."""

import pytest
import torch
from conftest import biased_rows
from helpers import build_trainer
from test_hub import FakeHub

TOKEN = "hf_trainerTESTtoken0123456789"


def test_trainer_push_uploads_clean_folder_with_fairtune_card(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    out = tmp_path / "run"
    trainer = build_trainer(
        tiny_bert_dir,
        biased_rows(32, 0.9),
        biased_rows(16, 0.5),
        out,
        adversary_weight=0.5,
        max_steps=2,
        save_strategy="steps",
        save_steps=2,
        push_to_hub=True,
        hub_model_id="org/debiased",
        hub_token=TOKEN,
        hub_strategy="end",
    )
    trainer.train()
    trainer.save_model()
    trainer.push_to_hub()
    files = hub.uploaded_files()
    assert "model.safetensors" in files and "README.md" in files and "config.json" in files
    for rel in files:
        assert "checkpoint-" not in rel and "adversary" not in rel and not rel.endswith((".bin", ".pt", ".pth"))
    for path in (hub.uploads[-1]).rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    args = torch.load(out / "training_args.bin", weights_only=False)
    assert args.hub_token is None  # the pickled arguments never carry the token
    assert trainer.args.hub_token == TOKEN  # the live trainer keeps it for the upload


def test_checkpoint_hub_strategies_are_refused(tiny_bert_dir, tmp_path, monkeypatch):
    FakeHub(tmp_path / "hub").install(monkeypatch)
    with pytest.raises(ValueError, match="`hub_strategy: checkpoint`"):
        build_trainer(
            tiny_bert_dir,
            biased_rows(8, 0.9),
            None,
            tmp_path / "r",
            push_to_hub=True,
            hub_model_id="org/x",
            hub_strategy="checkpoint",
        )
