"""The output directory of a run, checked before anything is loaded: writable, not another run, resumable.

`check_output_dir(training_args, config)` returns the checkpoint to resume from (or None) and raises
`FairtuneError` when:
- `output_dir` is a file, or cannot be written;
- it already holds a run (a `fairtune_config.json`, `checkpoint-*` folders or saved weights) and neither
  `overwrite_output_dir` nor `resume_from_checkpoint` is set: a new run would silently mix with the old one;
- `resume_from_checkpoint: true` finds no checkpoint, or the run saved there was made with another configuration
  (the differing keys are named): resuming it would train a different model, or crash inside torch;
- `resume_from_checkpoint` names a path that does not exist. `true`/`false` (as written on a command line) are
  read as booleans, never as paths.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fairtune.errors import FairtuneError

CONFIG_FILE = "fairtune_config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "model.safetensors.index.json")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off", "none", "null", "")
#: keys that may differ between a run and its resumption (where it runs, how it is resumed, what it records)
VOLATILE_KEYS = frozenset(
    {
        "command",
        "fairtune_version",
        "output_dir",
        "overwrite_output_dir",
        "resume_from_checkpoint",
        "logging_dir",
        "run_name",
        "hub_token",
        "push_to_hub_token",
        "group_counts",
        "num_train_epochs",
        "max_steps",
        "save_total_limit",
        "disable_tqdm",
        "report_to",
        "dataloader_num_workers",
        "local_rank",
        "per_device_eval_batch_size",
        "eval_steps",
        "logging_steps",
        "save_steps",
        "eval_strategy",
        "save_strategy",
        "push_to_hub",
        "hub_model_id",
    }
)


def resume_flag(value: Any) -> bool | str | None:
    """`resume_from_checkpoint` as True (latest checkpoint), a path, or None; `"true"`/`"false"` are booleans."""
    if value is None or value is False:
        return None
    if value is True:
        return True
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return None
    return text


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The `checkpoint-<step>` folders of a run, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def existing_run(output_dir: str | Path) -> list[str]:
    """What marks `output_dir` as holding a run: its config, checkpoints, saved weights (empty when none)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    marks = [name for name in (CONFIG_FILE, *WEIGHT_FILES) if (root / name).is_file()]
    ckpts = checkpoints(root)
    if ckpts:
        marks.append(f"{len(ckpts)} checkpoint(s), latest {ckpts[-1].name}")
    return marks


def _check_writable(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise FairtuneError(f"`output_dir`: {root} is a file; name a directory.")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise FairtuneError(f"`output_dir`: {probe} (a parent of {root}) is a file; name another directory.")
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".fairtune-write-test-"):
            pass
    except OSError as err:
        where = "" if probe == root else f" (its nearest existing parent {probe})"
        raise FairtuneError(
            f"`output_dir`: {root}{where} is not writable ({err.strerror}); choose another `output_dir`."
        ) from None


#: keys the pipeline fills in from the data after parsing (`label_list` for NER comes from the tags): compared only
#: when the current recipe sets them
DERIVED_KEYS = frozenset({"label_list", "group_names"})


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ between a saved run config and the current one (volatile keys ignored)."""
    keys = (set(saved) & set(current)) - VOLATILE_KEYS
    keys -= {k for k in DERIVED_KEYS if current.get(k) is None}
    return sorted(k for k in keys if json.dumps(saved[k], default=str) != json.dumps(current[k], default=str))


def _compare(run_dir: Path, config: Mapping[str, Any] | None) -> None:
    saved_path = run_dir / CONFIG_FILE
    if config is None or not saved_path.is_file():
        return
    try:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise FairtuneError(f"`resume_from_checkpoint`: {saved_path} is unreadable ({err}); cannot resume.") from None
    diff = config_differences(saved, config)
    if diff:
        shown = ", ".join(f"{k} ({saved[k]!r} -> {config[k]!r})" for k in diff[:6])
        more = f" and {len(diff) - 6} more" if len(diff) > 6 else ""
        raise FairtuneError(
            f"`resume_from_checkpoint`: the run in {run_dir} was made with another configuration: {shown}{more}. "
            "Resume with the same recipe, or start a new run in another `output_dir`."
        )


def check_output_dir(training_args, config: Mapping[str, Any] | None = None) -> str | None:
    """Check `training_args.output_dir` (and `resume_from_checkpoint`); return the checkpoint to resume, or None.

    `config` is the resolved config about to be saved (`config_to_dict(...)`); with it, resuming is refused when
    the saved run's config differs. Call once, on the main process, before any model is loaded.
    """
    root = Path(training_args.output_dir or ".")
    _check_writable(root)
    resume = resume_flag(getattr(training_args, "resume_from_checkpoint", None))
    overwrite = bool(getattr(training_args, "overwrite_output_dir", False))
    if resume is True:
        ckpts = checkpoints(root)
        if not ckpts:
            raise FairtuneError(
                f"`resume_from_checkpoint`: true, but {root} has no checkpoint-* folder to resume from; drop the flag "
                "to start a new run (with `save_strategy` steps or epoch to write checkpoints)."
            )
        _compare(root, config)
        return str(ckpts[-1])
    if isinstance(resume, str):
        path = Path(resume)
        if not path.is_dir():
            raise FairtuneError(
                f"`resume_from_checkpoint`: {resume!r} is not a checkpoint folder; pass a checkpoint-<step> folder "
                "of this run, or `true` for its latest checkpoint."
            )
        if not (path / "trainer_state.json").is_file():
            raise FairtuneError(
                f"`resume_from_checkpoint`: {path} has no trainer_state.json, so it is not a Trainer checkpoint."
            )
        _compare(path.parent if _CHECKPOINT.match(path.name) else path, config)
        return str(path)
    marks = existing_run(root)
    if marks and not overwrite:
        raise FairtuneError(
            f"`output_dir`: {root} already holds a run ({'; '.join(marks)}). Set `overwrite_output_dir: true` to "
            "replace it, `resume_from_checkpoint: true` to continue it, or choose another `output_dir`."
        )
    return None


def is_main_process() -> bool:
    """Whether this is the first process of a launch (RANK/LOCAL_RANK unset or 0): only it checks the directory."""
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) in ("0", "-1")


__all__ = ["check_output_dir", "checkpoints", "config_differences", "existing_run", "resume_flag"]
