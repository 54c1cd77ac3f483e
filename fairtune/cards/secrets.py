"""Keeping Hub tokens off cards, configs and baselines: redaction and detection."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fairtune.cards.base import TOKEN_FIELDS

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


#: flags whose value is a secret (`--hub_token X` or `--hub_token=X`)
SECRET_FLAGS = ("--hub_token", "--hub-token", "--token", "--push_to_hub_token", "--push-to-hub-token")


def redact_command(argv: Sequence[str]) -> list[str]:
    """A copy of a command line with every token value replaced by `<redacted>`, for files fairtune writes.

    Redacts the value after (or `=`-joined to) `--hub_token`, `--hub-token`, `--token`, `--push_to_hub_token`,
    `HF_TOKEN=...`-style assignments, and anything that looks like a Hub token (`hf_` + 16 or more characters).
    """
    out: list[str] = []
    redact_next = False
    for arg in argv:
        arg = str(arg)
        if redact_next:
            out.append(_REDACTED)
            redact_next = False
            continue
        name, eq, _ = arg.partition("=")
        if name in SECRET_FLAGS:
            if eq:
                out.append(f"{name}={_REDACTED}")
            else:
                out.append(arg)
                redact_next = True
            continue
        if eq and name.upper() in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN"):
            out.append(f"{name}={_REDACTED}")
            continue
        out.append(_HF_TOKEN_RE.sub(_REDACTED, arg))
    return out


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
