"""Telling Hub ids from local paths: which names may be published as a base model or dataset."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _display_name(name: Any) -> str | None:
    """A model or file name safe to print: Hub ids as they are, local paths reduced to their last part."""
    if not isinstance(name, str) or not name:
        return None
    return name if looks_like_hub_id(name) else Path(name).name or None


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
