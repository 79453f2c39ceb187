"""Secrets never leave the process: redact them from anything stored, shown, exported or logged.

The callback tokens travel in URL paths (our callback URL inside every STK request, the path of
every inbound callback); credentials may appear in gateway requests. ``redact_text`` and
``redact_json`` replace every configured secret, wherever it appears (also percent-encoded, as it
shows in a raw request line), with ``REDACTED``. The ``_strict`` variants also hide the token
segment of every callback URL whatever its value, for rows stored before the token changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.conf import settings

REDACTED = "***"
# Settings whose values are secrets; empty or very short values are ignored (nothing to hide).
SECRET_SETTINGS = (
    "STK_CALLBACK_TOKEN",
    "STK_CALLBACK_TOKEN_PREVIOUS",
    "C2B_CALLBACK_TOKEN",
    "SECRET_KEY",
    "PAYHERO_API_PASSWORD",
    "DARAJA_CONSUMER_SECRET",
    "DARAJA_PASSKEY",
)
_MIN_SECRET_LENGTH = 4
# /api/callbacks/<gateway>/<token>/...: the segment after the gateway name is always the token.
_CALLBACK_TOKEN_RE = re.compile(r"(/api/callbacks/[A-Za-z0-9_-]+/)([^/?#\s\"'<>]+)")


def secrets_in_use() -> list[str]:
    """Every configured secret, and its percent-encoded form where that differs, longest first."""
    values = {str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS}
    values = {v for v in values if len(v) >= _MIN_SECRET_LENGTH}
    values |= {quote(v, safe="") for v in values}
    # Longest first, so a secret that contains another is replaced whole.
    return sorted(values, key=len, reverse=True)


def redact_text(text: str) -> str:
    """``text`` with every configured secret replaced by ``***``."""
    if not text:
        return text
    for secret in secrets_in_use():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_json(value: Any) -> Any:
    """A JSON value (dict/list/str…) with every configured secret redacted in keys and strings."""
    return _walk(value, redact_text)


def redact_callback_paths(text: str) -> str:
    """``text`` with the token segment of every callback URL (``/api/callbacks/<gateway>/<token>``)
    replaced by ``***``, whether or not that token is still configured."""
    if not text or "/api/callbacks/" not in text:
        return text
    return _CALLBACK_TOKEN_RE.sub(rf"\g<1>{REDACTED}", text)


def redact_text_strict(text: str) -> str:
    """redact_text, then redact_callback_paths: for what is shown of rows stored long ago."""
    return redact_callback_paths(redact_text(text))


def redact_json_strict(value: Any) -> Any:
    """redact_json with redact_text_strict applied to every key and string."""
    return _walk(value, redact_text_strict)


def _walk(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _walk(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, redact) for v in value]
    return value
