"""Pushing debiased models to the Hugging Face Hub: what goes up, what never does, and the `card`/`push` commands.

An upload is built as a folder first (`prepare_upload_folder`), from an allowlist of model, tokenizer, config, report
and plot files; training state (adversary weights, fairtune state, optimizer/scheduler/RNG states, checkpoints,
`training_args.bin`, pickled weights) is never copied. `fairtune push --dry-run` writes that exact folder, and a real
push uploads it unchanged. The token comes from the environment or the Hub login only; it is never written, and a
folder that contains it is refused.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fairtune.cards import (
    BASELINE_NAME,
    CARD_NAME,
    CONFIG_NAME,
    EVAL_RESULTS_NAME,
    TOKEN_FIELDS,
    current_token,
    find_secret,
    load_baseline,
    looks_like_hub_id,
    redact_secrets,
    render_model_card,
    resolve_hub_id,
    scrub_config,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: top-level files of a model dir that are uploaded (besides the glob patterns below)
UPLOAD_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "adapter_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "chat_template.jinja",
        "chat_template.json",
        "preprocessor_config.json",
        "processor_config.json",
        CONFIG_NAME,
        "fairness_report.json",
        "fairness_report.md",
        BASELINE_NAME,
        EVAL_RESULTS_NAME,
        "all_results.json",
        "eval_results.json",
        "test_results.json",
        "train_results.json",
        CARD_NAME,
    }
)
#: top-level glob patterns that are uploaded: safetensors weights (and shard index), sentencepiece models, plots
UPLOAD_GLOBS = ("*.safetensors", "*.safetensors.index.json", "*.model", "*.png", "*thresholds*.json")
#: files uploaded from an evaluation subfolder (one holding results.json)
EVAL_DIR_GLOBS = ("*.json", "*.md", "*.png", "*.csv")
#: never uploaded, wherever they are (fnmatch on the path relative to the folder; `*` crosses `/`)
_NEVER_UPLOAD = (
    "*fairtune_adversary*",
    "*fairtune_state.json",
    "*training_args.bin",
    "*trainer_state.json",
    "*optimizer*",
    "*scheduler*.pt",
    "*scaler*.pt",
    "*rng_state*",
    "*.pt",
    "*.pth",
    "*.bin",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    "*global_step*",
)
#: folders of a training run that are never uploaded
_STATE_DIRS = ("_*", "checkpoint-*", "last-checkpoint", "runs", "wandb", ".*", "__pycache__")
_TEXT_SUFFIXES = (".json", ".md", ".txt", ".yaml", ".yml", ".jinja", ".csv")
_SCAN_LIMIT = 256 * 1024 * 1024


class HubError(ValueError):
    """A push that cannot go ahead; the message names the argument and the fix."""


# --------------------------------------------------------------------------------------------------- policies


def checkpoint_ignore_patterns() -> list[str]:
    """Glob patterns (for `HfApi.upload_folder(ignore_patterns=...)`) that keep training state off the Hub."""
    return ["_*", "checkpoint-*", "last-checkpoint/*", "runs/*", *_NEVER_UPLOAD]


def is_training_state(relpath: str) -> bool:
    """Whether a path relative to a model or checkpoint folder is training state that must never be uploaded."""
    path = relpath.replace(os.sep, "/")
    parts = path.split("/")
    if any(fnmatch.fnmatch(part, pattern) for part in parts[:-1] for pattern in _STATE_DIRS):
        return True
    return any(fnmatch.fnmatch(path, pattern) for pattern in checkpoint_ignore_patterns())


def scrub_token(args: T, *, inplace: bool = False) -> T:
    """`args` (TrainingArguments, a dataclass or a dict) without `hub_token`, safe to pickle or serialize."""
    if isinstance(args, Mapping):
        clean = {key: value for key, value in args.items() if key not in TOKEN_FIELDS}
        if inplace and isinstance(args, dict):
            for key in TOKEN_FIELDS:
                args.pop(key, None)
            return args
        return clean  # type: ignore[return-value]
    target = args if inplace else copy.copy(args)
    for name in TOKEN_FIELDS:
        if getattr(target, name, None) is not None:
            object.__setattr__(target, name, None)
    return target


def is_main_process() -> bool:
    """Whether this is the process that talks to the Hub (global rank 0; True outside distributed runs)."""
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    for name in ("RANK", "PROCESS_INDEX"):
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value) == 0
    return True


def validate_repo_id(repo_id: Any) -> str:
    """Return `repo_id` if it is a valid Hub model id (`ORG/NAME`), else raise HubError naming the fix."""
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise HubError("--repo-id: missing; pass the target repository as ORG/NAME (e.g. my-org/bert-debiased).")
    if not looks_like_hub_id(repo_id) or "/" not in repo_id:
        raise HubError(
            f"--repo-id: {repo_id!r} is not a Hub repo id; use ORG/NAME with letters, digits, '-', '_' or '.' "
            "(no '--' or '..', not a local path), e.g. my-org/bert-debiased."
        )
    return repo_id


# --------------------------------------------------------------------------------------------------- selection


def _weights_error(root: Path) -> HubError:
    pickled = sorted(p.name for p in root.glob("*.bin") if p.name != "training_args.bin")
    checkpoints = sorted(p.name for p in root.glob("checkpoint-*") if p.is_dir())
    hint = "pass the `output_dir` of a finished `fairtune train` run"
    if pickled:
        hint = (
            f"found only pickled weights ({', '.join(pickled)}); fairtune uploads safetensors only: re-save with "
            "`model.save_pretrained(dir)` (safetensors is the default)"
        )
    elif checkpoints:
        hint = f"only checkpoints ({', '.join(checkpoints)}) are there: let training finish, or pass a checkpoint dir"
    return HubError(
        f"--model-dir: {root} has no weights (model.safetensors, sharded *.safetensors with an index, or "
        f"adapter_model.safetensors); {hint}."
    )


def select_upload_files(model_dir: str | os.PathLike) -> list[str]:
    """The relative paths in `model_dir` that an upload carries (allowlist minus training state)."""
    root = Path(model_dir)
    if not root.is_dir():
        raise HubError(f"--model-dir: {root} is not a directory; pass the `output_dir` of `fairtune train`.")
    if not (root / CONFIG_NAME).is_file():
        raise HubError(
            f"--model-dir: {root} has no {CONFIG_NAME}; pass the `output_dir` of a `fairtune train` run "
            "(fairtune pushes only models whose recipe it can describe)."
        )
    selected: list[str] = []
    for path in sorted(root.iterdir()):
        name = path.name
        if path.is_file() and (name in UPLOAD_FILES or any(fnmatch.fnmatch(name, g) for g in UPLOAD_GLOBS)):
            selected.append(name)
        elif path.is_dir() and not any(fnmatch.fnmatch(name, p) for p in _STATE_DIRS):
            if (path / EVAL_RESULTS_NAME).is_file():  # an evaluation folder written by `fairtune evaluate`
                for child in sorted(path.iterdir()):
                    if child.is_file() and any(fnmatch.fnmatch(child.name, g) for g in EVAL_DIR_GLOBS):
                        selected.append(f"{name}/{child.name}")
    selected = [rel for rel in selected if not is_training_state(rel)]
    weights = [rel for rel in selected if rel.endswith(".safetensors") and "/" not in rel]
    if not weights:
        raise _weights_error(root)
    index = root / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        missing = sorted(shard for shard in shards if shard not in selected)
        if missing:
            raise HubError(f"--model-dir: {root} misses weight shards listed in its index: {', '.join(missing)}.")
    return selected


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _check_no_secret(folder: Path, files: list[str], token: str | None) -> None:
    """Refuse a folder where the token is written in any file, or a token value in a config, report or card."""
    needle = token.encode() if token else None
    for rel in files:
        path = folder / rel
        if path.stat().st_size > _SCAN_LIMIT:
            continue
        data = path.read_bytes()
        if needle and needle in data:
            raise HubError(f"{rel} contains your Hub token; remove it from that file before pushing.")
        if path.suffix in _TEXT_SUFFIXES and not _is_tokenizer_file(path.name):
            found = find_secret(data.decode("utf-8", errors="replace"))
            if found:
                raise HubError(f"{rel} contains {found}; remove it before pushing.")


def _is_tokenizer_file(name: str) -> bool:
    return name.startswith(("tokenizer", "vocab", "merges", "special_tokens", "added_tokens"))


def prepare_upload_folder(
    model_dir: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    repo_id: str | None = None,
    baseline: str | os.PathLike | None = None,
    keep_card: bool = False,
) -> list[str]:
    """Write into `dest` exactly what a push uploads and return those files (relative, sorted)."""
    root = Path(model_dir)
    files = select_upload_files(root)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise HubError(f"--output-folder: {dest} exists and is not an empty folder; pass a new folder.")
    if dest.resolve().is_relative_to(root.resolve()):
        raise HubError(f"--output-folder: {dest} is inside the model dir; pass a folder outside {root}.")
    dest.mkdir(parents=True, exist_ok=True)
    token = current_token()
    config = json.loads((root / CONFIG_NAME).read_text(encoding="utf-8"))

    written = set()
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel == CONFIG_NAME:
            target.write_text(json.dumps(scrub_config(config), indent=2) + "\n", encoding="utf-8")
        elif rel == "adapter_config.json":
            target.write_text(json.dumps(_publishable_adapter_config(root, config), indent=2) + "\n", encoding="utf-8")
        elif rel in (CARD_NAME, BASELINE_NAME):
            continue  # written below
        else:
            _link_or_copy(root / rel, target)
        written.add(rel)

    loaded_baseline = load_baseline(baseline, model_dir=root) if baseline is not None else None
    if loaded_baseline is not None:
        text = json.dumps(loaded_baseline, indent=2)
        (dest / BASELINE_NAME).write_text(redact_secrets(text, (token,)) + "\n", encoding="utf-8")
        written.add(BASELINE_NAME)
    elif (root / BASELINE_NAME).is_file():
        shutil.copy2(root / BASELINE_NAME, dest / BASELINE_NAME)
        written.add(BASELINE_NAME)

    if keep_card and (root / CARD_NAME).is_file():
        shutil.copy2(root / CARD_NAME, dest / CARD_NAME)
    else:
        card = render_model_card(root, baseline=loaded_baseline, repo_id=repo_id)
        card.save(dest / CARD_NAME)
    written.add(CARD_NAME)

    result = sorted(written)
    _check_no_secret(dest, result, token)
    return result


def _publishable_adapter_config(root: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """adapter_config.json with a local base model path replaced by its Hub id when that is known."""
    adapter = json.loads((root / "adapter_config.json").read_text(encoding="utf-8"))
    name = adapter.get("base_model_name_or_path")
    hub_id = resolve_hub_id(name, config.get("base_model_hub_id"), search_roots=[root, root.parent])
    if hub_id and hub_id != name:
        adapter["base_model_name_or_path"] = hub_id
    elif not hub_id:
        logger.warning(
            "adapter_config.json names a local base model (%s); set `base_model_hub_id` in the recipe so that users "
            "of the adapter can load its base model.",
            name,
        )
    return adapter


# --------------------------------------------------------------------------------------------------- push


@dataclass
class PushResult:
    """What a push did: the files it carried, and the commit URL (or the dry-run folder)."""

    repo_id: str
    files: list[str]
    dry_run: bool
    folder: Path | None = None
    commit_url: str | None = None
    sizes: dict[str, int] = field(default_factory=dict)


def _staging_dir(model_dir: Path) -> str:
    """A temporary folder on the model's filesystem when possible, so that weights are hard-linked, not copied."""
    try:
        return tempfile.mkdtemp(prefix=".fairtune-push-", dir=model_dir.resolve().parent)
    except OSError:
        return tempfile.mkdtemp(prefix="fairtune-push-")


def push(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    baseline: str | os.PathLike | None = None,
    output_folder: str | os.PathLike | None = None,
    keep_card: bool = False,
) -> PushResult | None:
    """Upload a trained model dir with its card to `repo_id` (main process only; returns None elsewhere)."""
    repo_id = validate_repo_id(repo_id)
    if revision is not None and (not revision.strip() or any(c.isspace() for c in revision)):
        raise HubError(f"--revision: {revision!r} is not a branch name; pass e.g. `main` or `debiased-v1`.")
    if not is_main_process():
        logger.debug("Not the main process: skipping the push of %s.", model_dir)
        return None
    root = Path(model_dir)
    if dry_run:
        folder = Path(output_folder) if output_folder else Path(tempfile.mkdtemp(prefix="fairtune-push-"))
        files = prepare_upload_folder(root, folder, repo_id=repo_id, baseline=baseline, keep_card=keep_card)
        sizes = {rel: (folder / rel).stat().st_size for rel in files}
        return PushResult(repo_id=repo_id, files=files, dry_run=True, folder=folder, sizes=sizes)

    if not (token or current_token()):
        raise HubError(
            "no Hugging Face token: log in with `hf auth login` or set the HF_TOKEN environment variable "
            "(fairtune never reads a token from recipes or command-line flags)."
        )
    from huggingface_hub import HfApi

    staging = Path(_staging_dir(root))
    try:
        folder = staging / "upload"
        files = prepare_upload_folder(root, folder, repo_id=repo_id, baseline=baseline, keep_card=keep_card)
        sizes = {rel: (folder / rel).stat().st_size for rel in files}
        api = HfApi(token=token)
        api.create_repo(repo_id=repo_id, private=True if private else None, exist_ok=True)
        if revision:
            api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
        from fairtune import __version__

        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            commit_message=commit_message or f"Upload debiased model (fairtune {__version__})",
            revision=revision,
            ignore_patterns=checkpoint_ignore_patterns(),
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    commit_url = getattr(info, "commit_url", None) or (str(info) if info is not None else None)
    logger.info("Pushed %d files to %s", len(files), repo_id)
    return PushResult(repo_id=repo_id, files=files, dry_run=False, commit_url=commit_url, sizes=sizes)
