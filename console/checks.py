"""System checks for settings a server must not run with (``manage.py check``, migrate, runserver).

The callback tokens are the only thing that stands between a stranger and our callback URLs, so
with DEBUG off each must be set, not a development default, long and random, and the STK and C2B
tokens must differ (the STK one travels with every prompt; the C2B one is registered once).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core import checks
from django.core.checks import Error, register
from django.utils.dateparse import parse_datetime

MIN_TOKEN_LENGTH = 24
# Defaults and placeholders shipped in settings.py, .env.example and earlier versions.
DEV_TOKENS = frozenset(
    {
        "dev-stk-callback-token",
        "dev-c2b-callback-token",
        "dev-callback-token",
        "change-me-to-a-long-random-string",
    }
)
_URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
TOKEN_HINT = 'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def _token_errors(name: str, value: str, id_prefix: str) -> list[Error]:
    if not value:
        return [Error(f"{name} is empty.", hint=TOKEN_HINT, id=f"{id_prefix}1")]
    if value in DEV_TOKENS or value.startswith("change-me"):
        return [Error(f"{name} is still the development default.", hint=TOKEN_HINT, id=f"{id_prefix}2")]
    errors = []
    if len(value) < MIN_TOKEN_LENGTH:
        short = f"{name} is shorter than {MIN_TOKEN_LENGTH} characters."
        errors.append(Error(short, hint=TOKEN_HINT, id=f"{id_prefix}3"))
    if not _URL_SAFE.match(value):
        # It is one segment of a URL path: a "/" or "%" would never match the callback route.
        errors.append(
            Error(f"{name} may only hold letters, digits, '-' and '_'.", hint=TOKEN_HINT, id=f"{id_prefix}4")
        )
    return errors


def _deadline():
    try:
        return parse_datetime(str(getattr(settings, "STK_CALLBACK_TOKEN_PREVIOUS_UNTIL", "") or ""))
    except ValueError:  # well-formed but impossible, such as month 13
        return None


@register("security")
def callback_tokens_check(app_configs=None, **kwargs) -> list:
    """Errors when DEBUG is off and a callback token is empty, a default, short, or both are equal.

    Also warns (whatever DEBUG) when a previous STK token is set without a readable deadline: it
    would never be accepted, so prompts sent before the rotation would lose their callbacks; and,
    with DEBUG on, when a token is empty (every callback to it would be refused, the simulator's too).
    """
    problems: list = []
    stk = str(getattr(settings, "STK_CALLBACK_TOKEN", "") or "")
    c2b = str(getattr(settings, "C2B_CALLBACK_TOKEN", "") or "")
    previous = str(getattr(settings, "STK_CALLBACK_TOKEN_PREVIOUS", "") or "")
    if previous and _deadline() is None:
        problems.append(
            checks.Warning(
                "STK_CALLBACK_TOKEN_PREVIOUS is set but STK_CALLBACK_TOKEN_PREVIOUS_UNTIL is not an ISO 8601 "
                "date-time, so the previous token is never accepted.",
                hint="For example STK_CALLBACK_TOKEN_PREVIOUS_UNTIL=2026-12-01T12:00:00+03:00",
                id="tillbook.W001",
            )
        )
    if settings.DEBUG:
        for name, value in (("STK_CALLBACK_TOKEN", stk), ("C2B_CALLBACK_TOKEN", c2b)):
            if not value:
                problems.append(
                    checks.Warning(
                        f"{name} is empty: every callback to its URLs is refused.",
                        hint="Leave it unset for the development default, or set a token.",
                        id="tillbook.W002",
                    )
                )
        return problems
    problems += _token_errors("STK_CALLBACK_TOKEN", stk, "tillbook.E00")
    problems += _token_errors("C2B_CALLBACK_TOKEN", c2b, "tillbook.E01")
    if stk and stk == c2b:
        problems.append(
            Error(
                "STK_CALLBACK_TOKEN and C2B_CALLBACK_TOKEN are the same.",
                hint="Give each its own token: the STK one travels with every prompt.",
                id="tillbook.E020",
            )
        )
    if previous and previous in (stk, c2b):
        problems.append(
            Error(
                "STK_CALLBACK_TOKEN_PREVIOUS equals a current callback token.",
                hint="It is the token being retired; set it to the old value or leave it empty.",
                id="tillbook.E021",
            )
        )
    return problems
