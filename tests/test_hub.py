"""Hub pushes, offline: what is uploaded (and never), the card that goes with it, tokens, dry runs, PEFT, ranks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import ModelCard
from huggingface_hub.utils import filter_repo_objects

from fairtune import hub
from fairtune.hub import HubError, checkpoint_ignore_patterns, prepare_upload_folder, push, scrub_token

try:
    from tests.test_cards import BASE_HUB_ID, FAKE_TOKEN, fairtune_config, make_baseline, make_model_dir
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from test_cards import BASE_HUB_ID, FAKE_TOKEN, fairtune_config, make_baseline, make_model_dir

REPO_ID = "fair-org/bert-debiased"
EXPECTED_FILES = [
    "README.md",
    "config.json",
    "eval/per_group.png",
    "eval/results.json",
    "fairness_report.json",
    "fairness_report.md",
    "fairtune_config.json",
    "group_metrics.png",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
]
FORBIDDEN = (
    "fairtune_adversary",
    "fairtune_state.json",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state",
    "trainer_state.json",
    "training_args.bin",
    "checkpoint-",
    "runs/",
)


class FakeHub:
    """Replaces the HTTP calls of HfApi; records them and keeps a copy of every uploaded folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, dict]] = []
        self.uploads: list[Path] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
        fake = self

        def create_repo(api, repo_id, **kwargs):
            fake.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
            return SimpleNamespace(repo_id=repo_id)

        def create_branch(api, repo_id, **kwargs):
            fake.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

        def upload_folder(api, **kwargs):
            fake.calls.append(("upload_folder", kwargs))
            folder = Path(kwargs["folder_path"])
            files = [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file()]
            kept = list(filter_repo_objects(files, ignore_patterns=kwargs.get("ignore_patterns")))
            target = fake.root / f"upload-{len(fake.uploads)}"
            for rel in kept:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / rel, target / rel)
            fake.uploads.append(target)
            return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/0123abc")

        def forbidden(api, *args, **kwargs):  # any other HTTP call would reach the network
            raise AssertionError("unexpected Hub call")

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", create_branch)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
        for name in ("create_commit", "upload_file", "whoami", "repo_info"):
            monkeypatch.setattr(huggingface_hub.HfApi, name, forbidden)
        return self

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def uploaded_files(self, index: int = -1) -> list[str]:
        folder = self.uploads[index]
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="session")
def _model_template(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("hub-template") / "run")


@pytest.fixture
def model_dir(_model_template, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("RANK", "PROCESS_INDEX"):
        monkeypatch.delenv(name, raising=False)
    target = tmp_path / "bert-debiased"
    shutil.copytree(_model_template, target)
    return target


@pytest.fixture
def fake_hub(tmp_path, monkeypatch) -> FakeHub:
    return FakeHub(tmp_path / "hub").install(monkeypatch)


def _assert_clean(files: list[str]) -> None:
    for rel in files:
        for forbidden in FORBIDDEN:
            assert forbidden not in rel, rel
        assert not rel.endswith((".bin", ".pt", ".pth")), rel


def _assert_no_token(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert FAKE_TOKEN.encode() not in data, path
            assert b"hf_Fake" not in data, path


# --------------------------------------------------------------------------------------------------- selection


def test_upload_folder_holds_exactly_the_publishable_files(model_dir, tmp_path):
    files = prepare_upload_folder(model_dir, tmp_path / "out")
    assert files == EXPECTED_FILES
    on_disk = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert on_disk == files
    _assert_clean(files)
    # the model dir really had all of the forbidden files
    for rel in ("training_args.bin", "trainer_state.json", "fairtune_adversary.safetensors", "optimizer.pt"):
        assert (model_dir / rel).is_file()
    assert (model_dir / "checkpoint-1" / "fairtune_adversary.safetensors").is_file()
    # weights are the saved ones, byte for byte; the card is a fairtune card
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert "fairtune" in card.data.tags


def test_checkpoint_ignore_patterns_keep_training_state_out(model_dir):
    checkpoint = model_dir / "checkpoint-1"
    files = sorted(p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file())
    kept = list(filter_repo_objects(files, ignore_patterns=checkpoint_ignore_patterns()))
    assert kept == ["config.json", "model.safetensors"]
    # the same patterns applied to the whole output dir (transformers' `_push_from_checkpoint` main upload)
    everything = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    kept = list(filter_repo_objects(everything, ignore_patterns=checkpoint_ignore_patterns()))
    _assert_clean(kept)
    assert "model.safetensors" in kept and "tokenizer.json" in kept
    for rel in ("global_step10/zero_pp_rank_0_mp_rank_00_optim_states.pt", "last-checkpoint/fairtune_state.json"):
        assert hub.is_training_state(rel), rel
    assert not hub.is_training_state("model-00001-of-00002.safetensors")


def test_sharded_weights_are_uploaded_with_their_index(model_dir, tmp_path):
    (model_dir / "model.safetensors").rename(model_dir / "model-00001-of-00002.safetensors")
    shutil.copy2(model_dir / "model-00001-of-00002.safetensors", model_dir / "model-00002-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    files = prepare_upload_folder(model_dir, tmp_path / "out")
    assert {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} <= set(files)
    assert "model.safetensors.index.json" in files
    (model_dir / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(HubError, match="misses weight shards.*00002-of-00002"):
        prepare_upload_folder(model_dir, tmp_path / "out2")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: shutil.rmtree(d), "--model-dir: .* is not a directory"),
        (lambda d: (d / "fairtune_config.json").unlink(), "--model-dir: .* has no fairtune_config.json"),
        (lambda d: (d / "model.safetensors").unlink(), r"--model-dir: .* has no weights.*only checkpoints"),
        (
            lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"),
            r"only pickled weights \(pytorch_model.bin\).*safetensors only",
        ),
    ],
)
def test_clear_errors_for_bad_model_dirs(model_dir, tmp_path, fake_hub, setup, message):
    setup(model_dir)
    with pytest.raises(HubError, match=message):
        push(model_dir, REPO_ID)
    assert fake_hub.calls == []


@pytest.mark.parametrize(
    "repo_id", ["", "no-namespace", "org/name/extra", "org/na me", "/abs/path", "org/x--y", "./x"]
)
def test_bad_repo_id_names_the_flag(model_dir, fake_hub, repo_id):
    with pytest.raises(HubError, match="--repo-id"):
        push(model_dir, repo_id)
    assert fake_hub.calls == []


def test_dest_must_be_new_and_outside_the_model_dir(model_dir, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(HubError, match="--output-folder: .* not an empty folder"):
        prepare_upload_folder(model_dir, tmp_path / "busy")
    with pytest.raises(HubError, match="--output-folder: .* inside the model dir"):
        prepare_upload_folder(model_dir, model_dir / "upload")


# --------------------------------------------------------------------------------------------------- push


def test_push_uploads_the_prepared_folder_with_its_card(model_dir, fake_hub):
    result = push(model_dir, REPO_ID, commit_message="Debiased with CLP + adversary")
    assert fake_hub.names() == ["create_repo", "upload_folder"]
    create = fake_hub.calls[0][1]
    assert create == {"repo_id": REPO_ID, "private": None, "exist_ok": True}
    upload = fake_hub.calls[1][1]
    assert upload["repo_id"] == REPO_ID and upload["commit_message"] == "Debiased with CLP + adversary"
    assert upload["revision"] is None and "token" not in upload
    assert fake_hub.uploaded_files() == EXPECTED_FILES == result.files
    assert result.commit_url == f"https://huggingface.co/{REPO_ID}/commit/0123abc" and not result.dry_run
    _assert_clean(fake_hub.uploaded_files())
    card = ModelCard.load(fake_hub.uploads[-1] / "README.md")
    assert card.data.model_name == "bert-debiased" and card.data.base_model == BASE_HUB_ID
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics["demographic_parity_difference"] == pytest.approx(0.0421)
    assert f'from_pretrained("{REPO_ID}")' in card.text
    config = json.loads((fake_hub.uploads[-1] / "fairtune_config.json").read_text())
    assert config["adversary_weight"] == 1.0 and "hub_token" not in config
    assert not list(model_dir.parent.glob(".fairtune-push-*"))  # the staging folder is removed


def test_push_private_revision_and_default_message(model_dir, fake_hub):
    push(model_dir, REPO_ID, private=True, revision="debiased-v1")
    assert fake_hub.names() == ["create_repo", "create_branch", "upload_folder"]
    assert fake_hub.calls[0][1]["private"] is True
    assert fake_hub.calls[1][1] == {"repo_id": REPO_ID, "branch": "debiased-v1", "exist_ok": True}
    upload = fake_hub.calls[2][1]
    assert upload["revision"] == "debiased-v1" and upload["commit_message"].startswith("Upload debiased model")
    with pytest.raises(HubError, match="--revision"):
        push(model_dir, REPO_ID, revision="has space")


def test_token_is_never_written_anywhere(model_dir, fake_hub, tmp_path):
    # a recipe that (wrongly) carried the token, and a command line that named it
    config = json.loads((model_dir / "fairtune_config.json").read_text())
    config.update(hub_token=FAKE_TOKEN, command=f"fairtune train r.yaml --hub_token {FAKE_TOKEN}")
    (model_dir / "fairtune_config.json").write_text(json.dumps(config))
    result = push(model_dir, REPO_ID, baseline=make_baseline(tmp_path / "baseline"))
    assert "baseline_report.json" in result.files
    _assert_no_token(fake_hub.uploads[-1])
    uploaded = json.loads((fake_hub.uploads[-1] / "fairtune_config.json").read_text())
    assert "hub_token" not in uploaded and uploaded["command"] == "fairtune train r.yaml --hub_token <redacted>"
    # the token is in the environment, not in any call we made to the Hub client
    assert FAKE_TOKEN not in repr(fake_hub.calls)


def test_a_file_holding_the_token_is_refused(model_dir, fake_hub):
    (model_dir / "fairness_report.md").write_text(f"debug: {FAKE_TOKEN}\n")
    with pytest.raises(HubError, match="fairness_report.md contains your Hub token"):
        push(model_dir, REPO_ID)
    assert fake_hub.names() == []


def test_push_without_a_token_says_how_to_log_in(model_dir, fake_hub, monkeypatch):
    monkeypatch.setattr(hub, "current_token", lambda: None)
    with pytest.raises(HubError, match="hf auth login.*HF_TOKEN"):
        push(model_dir, REPO_ID)
    assert fake_hub.calls == []
    assert push(model_dir, REPO_ID, dry_run=True).dry_run  # a dry run needs no token


def test_dry_run_writes_the_exact_folder_and_uploads_nothing(model_dir, fake_hub, tmp_path):
    folder = tmp_path / "would-upload"
    result = push(model_dir, REPO_ID, dry_run=True, output_folder=folder)
    assert fake_hub.calls == []
    assert result.dry_run and result.folder == folder and result.files == EXPECTED_FILES
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == EXPECTED_FILES
    _assert_no_token(folder)
    # a real push afterwards uploads the same files with the same card
    push(model_dir, REPO_ID)
    assert fake_hub.uploaded_files() == result.files
    assert (fake_hub.uploads[-1] / "README.md").read_text() == (folder / "README.md").read_text()


def test_keep_card_uploads_the_existing_readme(model_dir, fake_hub):
    (model_dir / "README.md").write_text("---\ntags:\n- fairtune\n---\n# Hand-written card\n")
    push(model_dir, REPO_ID, keep_card=True)
    assert (fake_hub.uploads[-1] / "README.md").read_text().endswith("# Hand-written card\n")
    push(model_dir, REPO_ID)  # without --keep-card the card is rendered again for the repo
    assert "## Debiasing method" in (fake_hub.uploads[-1] / "README.md").read_text()


def test_cli_push_dry_run_lists_the_folder(model_dir, fake_hub, tmp_path, capsys):
    from fairtune.cli import main

    folder = tmp_path / "listing"
    argv = ["push", "--model-dir", str(model_dir), "--repo-id", REPO_ID, "--dry-run", "--output-folder", str(folder)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"Dry run: nothing uploaded. {REPO_ID} would receive {len(EXPECTED_FILES)} files, in {folder}" in out
    for rel in EXPECTED_FILES:
        assert f"  {rel}  (" in out
    assert "training_args.bin" not in out and "checkpoint" not in out
    assert fake_hub.calls == []

    assert main(["push", "--model-dir", str(model_dir), "--repo-id", REPO_ID, "--private"]) == 0
    assert fake_hub.calls[0][1]["private"] is True and "Pushed 11 files" in capsys.readouterr().out

    assert main(["push", "--model-dir", str(model_dir), "--repo-id", "bad id"]) == 2
    assert "--repo-id" in capsys.readouterr().err
    assert main(["push", "--model-dir", str(tmp_path / "nope"), "--repo-id", REPO_ID]) == 2
    assert "--model-dir" in capsys.readouterr().err


def test_only_the_main_process_pushes(model_dir, fake_hub, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert push(model_dir, REPO_ID) is None
    assert push(model_dir, REPO_ID, dry_run=True) is None
    assert fake_hub.calls == []
    monkeypatch.setenv("RANK", "0")
    assert push(model_dir, REPO_ID) is not None


# --------------------------------------------------------------------------------------------------- PEFT


@pytest.fixture(scope="session")
def _peft_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("peft-template")
    local_base = root / "local-base-model"
    local_base.mkdir()
    run = root / "run"
    config = fairtune_config(run, model_name_or_path=str(local_base), use_peft=True, lora_r=2)
    make_model_dir(run, peft=True, config=config)
    adapter = json.loads((run / "adapter_config.json").read_text())
    adapter["base_model_name_or_path"] = str(local_base)
    (run / "adapter_config.json").write_text(json.dumps(adapter))
    return root


@pytest.mark.parametrize("hub_id", [BASE_HUB_ID, None])
def test_peft_adapter_push(_peft_template, tmp_path, fake_hub, monkeypatch, hub_id):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    root = tmp_path / "peft"
    shutil.copytree(_peft_template, root)
    run = root / "run"
    config = json.loads((run / "fairtune_config.json").read_text())
    config["base_model_hub_id"] = hub_id
    (run / "fairtune_config.json").write_text(json.dumps(config))

    result = push(run, REPO_ID)
    files = fake_hub.uploaded_files()
    assert files == result.files
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files
    assert "model.safetensors" not in files
    _assert_clean(files)
    card = ModelCard.load(fake_hub.uploads[-1] / "README.md")
    assert card.data.library_name == "peft" and "peft" in card.data.tags
    assert "PEFT adapter for" in card.text and "AutoPeftModelForSequenceClassification" in card.text
    adapter = json.loads((fake_hub.uploads[-1] / "adapter_config.json").read_text())
    if hub_id:
        assert card.data.base_model == BASE_HUB_ID
        assert f"[`{BASE_HUB_ID}`]" in card.text
        assert adapter["base_model_name_or_path"] == BASE_HUB_ID  # loadable by anyone, not a local path
    else:
        assert card.data.base_model is None and "a local model" in card.text
        saved = json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"]
        assert adapter["base_model_name_or_path"] == saved  # left as saved (a warning asks for base_model_hub_id)


# --------------------------------------------------------------------------------------------------- scrub_token


def test_scrub_token_makes_training_arguments_safe_to_pickle(tmp_path):
    import torch
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), hub_token=FAKE_TOKEN, report_to="none")
    clean = scrub_token(args)
    assert clean.hub_token is None and args.hub_token == FAKE_TOKEN  # the original is left alone
    torch.save(clean, tmp_path / "training_args.bin")
    assert FAKE_TOKEN.encode() not in (tmp_path / "training_args.bin").read_bytes()
    loaded = torch.load(tmp_path / "training_args.bin", weights_only=False)
    assert loaded.hub_token is None and loaded.output_dir == str(tmp_path)
    assert scrub_token(args, inplace=True) is args and args.hub_token is None
    as_dict = {"hub_token": FAKE_TOKEN, "seed": 1}
    assert scrub_token(as_dict) == {"seed": 1} and "hub_token" in as_dict


# --------------------------------------------------------------------------------------------------- slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PUSH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from types import SimpleNamespace

    import huggingface_hub
    import torch.distributed as dist

    model_dir, records = Path(sys.argv[1]), Path(sys.argv[2])
    dist.init_process_group("gloo")  # what the Trainer's accelerator does under `accelerate launch`
    rank = dist.get_rank()
    calls = []

    def record(name):
        def fake(api, *args, **kwargs):
            calls.append({"call": name, "repo_id": kwargs.get("repo_id", args[0] if args else None)})
            if name == "upload_folder":
                folder = Path(kwargs["folder_path"])
                calls[-1]["files"] = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
                return SimpleNamespace(commit_url="https://huggingface.co/x/commit/1")
        return fake

    for name in ("create_repo", "create_branch", "upload_folder", "create_commit", "upload_file"):
        setattr(huggingface_hub.HfApi, name, record(name))

    from fairtune.hub import push

    result = push(model_dir, "fair-org/bert-debiased")
    dist.barrier()
    (records / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "pushed": result is not None, "calls": calls}))
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
@pytest.mark.distributed
def test_only_one_process_pushes_under_accelerate_launch(model_dir, tmp_path):
    script = tmp_path / "push_script.py"
    script.write_text(PUSH_SCRIPT)
    records = tmp_path / "records"
    records.mkdir()
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        str(script),
        str(model_dir),
        str(records),
    ]
    env = {**os.environ, "HF_TOKEN": FAKE_TOKEN, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((records / f"rank{r}.json").read_text()) for r in (0, 1)]
    uploads = [call for rank in ranks for call in rank["calls"] if call["call"] == "upload_folder"]
    assert len(uploads) == 1 and uploads[0]["files"] == EXPECTED_FILES
    assert ranks[0]["pushed"] and ranks[0]["calls"][0]["call"] == "create_repo"
    assert not ranks[1]["pushed"] and ranks[1]["calls"] == []


@pytest.mark.slow
def test_templates_load_from_an_installed_wheel(tmp_path):
    """Build the wheel from a copy of the project, install it by unzipping, and render a card from it."""
    project = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy2(project / "pyproject.toml", source / "pyproject.toml")
    (source / "README.md").write_text("fairtune\n")
    shutil.copytree(project / "fairtune", source / "fairtune", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    (wheel,) = wheels.glob("fairtune-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fairtune/model_cards/fairtune_model_card.md.j2" in names and "fairtune/model_cards/citations.yaml" in names
    assert not any(n.startswith("model_cards/") for n in names)  # nothing generic at the top of site-packages
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    run = make_model_dir(tmp_path / "run", training_state=False)
    code = (
        "import sys; from fairtune import cards; "
        "print(cards.template_dir()); print(cards.write_model_card(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(run)], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    template_dir = proc.stdout.splitlines()[0]
    assert template_dir == str(site / "fairtune" / "model_cards")
    assert "## Debiasing method" in (run / "README.md").read_text()
