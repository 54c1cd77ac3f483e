"""Where benchmark files are looked up when a suite is given no `data` path (a convenience, never required)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_roots() -> list[Path]:
    """Candidate data roots: $FAIRTUNE_DATA_DIR, then ../shared/data from the working dir and from the checkout."""
    roots = []
    if os.environ.get("FAIRTUNE_DATA_DIR"):
        roots.append(Path(os.environ["FAIRTUNE_DATA_DIR"]))
    roots.append(Path.cwd().parent / "shared" / "data")
    roots.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    return roots


def resolve_data(path: str | os.PathLike | None, default_relative: str, suite: str, hint: str) -> Path:
    """`path` if given (must exist), else the first existing `<root>/<default_relative>`, else a clear error."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"suite {suite!r}: data path {p} does not exist")
        return p
    for root in shared_data_roots():
        candidate = root / default_relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"suite {suite!r} needs a data path (recipe key `data` under `{suite}:`, or --data). {hint} "
        f"(Looked for {default_relative} under $FAIRTUNE_DATA_DIR and ../shared/data.)"
    )
