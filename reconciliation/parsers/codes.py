"""M-Pesa transaction codes (receipt numbers): normalise, find in messages, compare.

Formats doc §3.5: a current code is 10 upper-case alphanumerics. Inferred (not official)
structure: char 1 = year (L=2017 … U=2026, one letter per year), char 2 = month (A–L),
char 3 = day (1–9, then A=10 … V=31).
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")
CODE_LENGTH = 10
_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]{9}$")
_INNER_SEPARATORS_RE = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014\u00a0\u202f]")
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")
_JOIN_SEPARATORS = {" ", "-", "\u2010", "\u2011", "\u2013", "\u00a0", "\u202f"}
_URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b\S+\.(?:com|ly|ke|org|net|me|io|co)/\S*|\S+@\S+\.\S+", re.I)
# Letters prefix then seven+ digits: currency or account refs such as KSH1500000, ACC1234567.
_LETTERS_THEN_DIGITS_RE = re.compile(r"^[A-Z]{2,3}\d{7,8}$")
_DIGIT_DAY = "123456789"
_LETTER_DAYS = "ABCDEFGHIJKLMNOPQRSTUV"  # A=10 … V=31
_YEAR_BASE_LETTER, _YEAR_BASE = "L", 2017

# Look-alike slips when a customer retypes a code; each maps to one canonical character.
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "S": "5", "B": "8", "Z": "2"})

# Words that happen to be 10 alphanumerics and must never be read as codes.
_STOPWORDS = frozenset({"SAFARICOM1", "WHATSAPP10"})


def normalise_code(raw: str) -> str | None:
    """Upper-case ``raw``, drop inner spaces/dashes; return the 10-char code or None.

    A code matches ``^[A-Z0-9]{10}$``, starts with a letter and holds at least one digit
    and at least two letters.
    """
    if not raw:
        return None
    code = _INNER_SEPARATORS_RE.sub("", str(raw)).upper()
    if not _CODE_RE.match(code):
        return None
    digits = sum(ch.isdigit() for ch in code)
    if digits < 1 or CODE_LENGTH - digits < 2:
        return None
    return code


def _looks_like_code_token(token: str) -> str | None:
    """A single 10-char token: upper-case ones need only the basic shape; lower/mixed case
    ones (typed by hand, or ordinary words like ``password12``) must also carry a decodable
    embedded date."""
    code = normalise_code(token)
    if code is None or code in _STOPWORDS or _LETTERS_THEN_DIGITS_RE.match(code):
        return None
    if token != token.upper() and embedded_date(code) is None:
        return None
    return code


def _same_case(parts: list[str]) -> bool:
    letters = "".join(ch for ch in "".join(parts) if ch.isalpha())
    return letters.isupper() or letters.islower()


def _looks_like_split_code(parts: list[str]) -> str | None:
    """2–4 tokens joined by single spaces/dashes (``sae3 yulr0y``, ``SAE3-YULR0Y``).

    Stricter than a single token so that ``paid 150 for`` or ``for 2GB code`` never join:
    every part at least 2 chars, one letter case throughout, at least one part mixing
    letters and digits, no part purely digits longer than 3, and a decodable embedded date.
    """
    if any(len(p) < 2 for p in parts) or not _same_case(parts):
        return None
    if not any(any(c.isalpha() for c in p) and any(c.isdigit() for c in p) for p in parts):
        return None
    if any(p.isdigit() and len(p) > 3 for p in parts):
        return None
    code = normalise_code("".join(parts))
    if code is None or _LETTERS_THEN_DIGITS_RE.match(code) or embedded_date(code) is None:
        return None
    return code


def find_codes(text: str) -> list[str]:
    """Every M-Pesa code in a customer message, normalised, in order, deduplicated.

    Heuristics:
    - URLs and e-mail addresses are blanked first.
    - The text is split into alphanumeric tokens. A whole 10-char token is a code when it
      passes :func:`normalise_code` (so words without digits like ``CONFIRMED`` and
      phones/amounts starting with a digit are out), is not letters followed only by 7+ digits
      (``KSH1500000``), and, if not written in upper case, carries a decodable date.
    - Otherwise 2–4 consecutive tokens separated by exactly one space or dash whose lengths
      add up to 10 are tried as a split code (see :func:`_looks_like_split_code`).
    """
    cleaned = _URL_RE.sub(" ", text or "")
    tokens = list(_TOKEN_RE.finditer(cleaned))
    codes: list[str] = []
    i = 0
    while i < len(tokens):
        code, used = _code_at(cleaned, tokens, i)
        if code and code not in codes:
            codes.append(code)
        i += used
    return codes


def _code_at(text: str, tokens: list[re.Match], i: int) -> tuple[str | None, int]:
    """Try a code starting at token ``i``; return (code or None, tokens consumed)."""
    first = tokens[i].group(0)
    if len(first) == CODE_LENGTH:
        return _looks_like_code_token(first), 1
    if len(first) > CODE_LENGTH:
        return None, 1
    parts = [first]
    for j in range(i + 1, min(i + 4, len(tokens))):
        gap = text[tokens[j - 1].end() : tokens[j].start()]
        if gap not in _JOIN_SEPARATORS:
            break
        parts.append(tokens[j].group(0))
        total = sum(len(p) for p in parts)
        if total == CODE_LENGTH:
            code = _looks_like_split_code(parts)
            return (code, len(parts)) if code else (None, 1)
        if total > CODE_LENGTH:
            break
    return None, 1


def lookalike_key(code: str) -> str:
    """Key equal for codes that differ only by O/0, I/1, S/5, B/8, Z/2 slips."""
    value = normalise_code(code) or _INNER_SEPARATORS_RE.sub("", str(code or "")).upper()
    return value.translate(_LOOKALIKES)


def is_lookalike(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are different codes with the same :func:`lookalike_key`."""
    norm_a = normalise_code(a) or str(a or "").upper()
    norm_b = normalise_code(b) or str(b or "").upper()
    return norm_a != norm_b and lookalike_key(a) == lookalike_key(b)


def embedded_date(code: str) -> dt.date | None:
    """Date encoded in the first three chars of a code (§3.5), or None when undecodable."""
    value = normalise_code(code)
    if value is None:
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


def is_date_plausible(code: str, when: dt.datetime | dt.date, tolerance_days: int = 2) -> bool | None:
    """Whether the code's embedded date is within ``tolerance_days`` of ``when``.

    ``when`` may be an aware datetime (compared in Africa/Nairobi), a naive datetime
    (taken as Nairobi local time) or a date. None when the code's date is undecodable.
    """
    embedded = embedded_date(code)
    if embedded is None:
        return None
    if isinstance(when, dt.datetime):
        when = when.astimezone(NAIROBI).date() if when.tzinfo else when.date()
    return abs((when - embedded).days) <= tolerance_days


def join_across_messages(first_text: str, second_text: str) -> str | None:
    """Placeholder until the split-code reader lands: never joins."""
    return None
