"""The shape of an M-Pesa transaction code (receipt number) and the date it carries.

Formats doc §3.5: a current code is 10 upper-case alphanumerics. Inferred (not official)
structure: char 1 = year (L=2017 … U=2026, one letter per year), char 2 = month (A–L),
char 3 = day (1–9, then A=10 … V=31).
"""

from __future__ import annotations

import datetime as dt
import re

CODE_LENGTH = 10
CODE_RE = re.compile(r"^[A-Z][A-Z0-9]{9}$")
INNER_SEPARATORS_RE = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014\u00a0\u202f]")
_DIGIT_DAY = "123456789"
_LETTER_DAYS = "ABCDEFGHIJKLMNOPQRSTUV"  # A=10 … V=31
_YEAR_BASE_LETTER, _YEAR_BASE = "L", 2017


def normalise_code(raw: str) -> str | None:
    """Upper-case ``raw``, drop inner spaces/dashes; return the 10-char code or None.

    A code matches ``^[A-Z0-9]{10}$``, starts with a letter and holds at least one digit
    and at least two letters.
    """
    if not raw:
        return None
    code = INNER_SEPARATORS_RE.sub("", str(raw)).upper()
    if not CODE_RE.match(code):
        return None
    digits = sum(ch.isdigit() for ch in code)
    if digits < 1 or CODE_LENGTH - digits < 2:
        return None
    return code


def embedded_date(code: str) -> dt.date | None:
    """Date encoded in the first three chars of a code, or None when undecodable."""
    value = INNER_SEPARATORS_RE.sub("", str(code or "")).upper()
    if not CODE_RE.match(value):
        return None
    year = _YEAR_BASE + ord(value[0]) - ord(_YEAR_BASE_LETTER)
    month_char, day_char = value[1], value[2]
    if not ("A" <= month_char <= "L"):
        return None
    month = ord(month_char) - ord("A") + 1
    if day_char in _DIGIT_DAY:
        day = int(day_char)
    elif day_char in _LETTER_DAYS:
        day = 10 + _LETTER_DAYS.index(day_char)
    else:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def date_prefix(day: dt.date) -> str:
    """The three date characters a code issued on `day` starts with (the inverse of
    :func:`embedded_date`): year letter, month A–L, day 1–9 then A=10 … V=31."""
    year = chr(ord("A") + (day.year - _YEAR_BASE + ord(_YEAR_BASE_LETTER) - ord("A")) % 26)
    month = chr(ord("A") + day.month - 1)
    dom = str(day.day) if day.day < 10 else _LETTER_DAYS[day.day - 10]
    return f"{year}{month}{dom}"
