"""Secrets never leave the process: redact them from anything stored, shown, exported or logged.

The callback tokens travel in URL paths (our callback URL inside every STK request, the path of
every inbound callback); credentials may appear in gateway requests. ``redact_text`` and
``redact_json`` replace every configured secret, wherever it appears, with ``REDACTED``.
"""

from __future__ import annotations

from typing import Any

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


def secrets_in_use() -> list[str]:
    values = {str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS}
    # Longest first, so a secret that contains another is replaced whole.
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


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
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(str(k)): redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value
