"""Secrets never leave the process: redact them from anything stored, shown, exported or logged.

The callback tokens travel in URL paths (our callback URL inside every STK request, the path of
every inbound callback); credentials may appear in gateway requests. ``redact_text`` and
``redact_json`` replace every configured secret, wherever it appears (also percent-encoded, as it
shows in a raw request line), with ``REDACTED``. The ``_strict`` variants also hide the token
segment of every callback URL whatever its value, for rows stored before the token changed.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

REDACTED = "***"
# Settings whose values are secrets; empty or very short values are ignored (nothing to hide).
SECRET_SETTINGS = (
    "STK_CALLBACK_TOKEN",
    "STK_CALLBACK_TOKEN_PREVIOUS",
    "C2B_CALLBACK_TOKEN",
    "SECRET_KEY",
    "PAYHERO_API_PASSWORD",
    "DARAJA_CONSUMER_KEY",
    "DARAJA_CONSUMER_SECRET",
    "DARAJA_PASSKEY",
)
_MIN_SECRET_LENGTH = 4
# /api/callbacks/<gateway>/<token>/...: the segment after the gateway name is always the token.
_CALLBACK_TOKEN_RE = re.compile(r"(/api/callbacks/[A-Za-z0-9_-]+/)([^/?#\s\"'<>]+)")


# (user, password) setting pairs sent as HTTP Basic auth: the encoded header value is a secret too.
BASIC_AUTH_SETTINGS = (
    ("DARAJA_CONSUMER_KEY", "DARAJA_CONSUMER_SECRET"),
    ("PAYHERO_API_USERNAME", "PAYHERO_API_PASSWORD"),
)


def _setting(name: str) -> str:
    return str(getattr(settings, name, "") or "")


@functools.cache
def secrets_in_use() -> tuple[str, ...]:
    """Every configured secret, and its percent-encoded form where that differs, longest first.

    Worked out once and kept until a setting changes (Django's setting_changed: tests and
    override_settings); every stored callback and every log line asks for it."""
    values = {_setting(name) for name in SECRET_SETTINGS}
    for user_setting, password_setting in BASIC_AUTH_SETTINGS:
        # (user, password) pairs sent as HTTP Basic auth: the encoded header value is a secret too.
        user, password = _setting(user_setting), _setting(password_setting)
        if password:
            values.add(base64.b64encode(f"{user}:{password}".encode()).decode())
    values = {v for v in values if len(v) >= _MIN_SECRET_LENGTH}
    values |= {quote(v, safe="") for v in values}
    # Longest first, so a secret that contains another is replaced whole.
    return tuple(sorted(values, key=len, reverse=True))


@receiver(setting_changed)
def _secrets_forget(**kwargs) -> None:
    secrets_in_use.cache_clear()


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


# A Kenyan mobile number in any form a log line may carry it: 2547XXXXXXXX, +254 7XX XXX XXX,
# 00254…, 254 (0)7…, 07XXXXXXXX, 01XXXXXXXX, percent-encoded "+" (%2B254…), spaces or dashes
# between the digits. Not glued to other digits (timestamps and amounts are left alone); the
# bare nine-digit form (712345678) only when it stands alone, never inside a code such as
# "TXN712345678". Already masked numbers (2547***678) do not match.
_SEP = r"[ \-\u2010\u2011\u00a0]?"
_LOG_PHONE_RE = re.compile(
    rf"""
    (?<![0-9])
    (?:
        (?:(?:\+|%2B|00){_SEP})?254{_SEP}(?:\(0\){_SEP})?(?P<a>[17])(?:{_SEP}[0-9]){{8}}
      | \(?0\)?{_SEP}(?P<b>[17])(?:{_SEP}[0-9]){{8}}
      | (?<![A-Za-z_])(?P<c>[17])[0-9]{{8}}(?![A-Za-z_])
    )
    (?![0-9])
    """,
    re.VERBOSE | re.IGNORECASE,
)


def _phone_mask(match: re.Match) -> str:
    digits = re.sub(r"[^0-9]", "", match.group(0))
    return f"254{match.group('a') or match.group('b') or match.group('c')}{REDACTED}{digits[-3:]}"


def mask_phone_numbers(text: str) -> str:
    """``text`` with every Kenyan mobile number masked as ``2547***678`` (what logs may keep)."""
    if not text:
        return text
    return _LOG_PHONE_RE.sub(_phone_mask, text)


def redact_log_text(text: str) -> str:
    """What a log line may say: redact_text_strict, then every phone number masked."""
    return mask_phone_numbers(redact_text_strict(text))


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
