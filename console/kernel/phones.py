"""Kenyan mobile numbers: normalise, find in free text, mask for display.

Pure Python (no Django models), so it can be used from parsers, forms and tests alike.
The canonical form is E.164 without the plus sign: ``2547XXXXXXXX`` or ``2541XXXXXXXX``.
"""

from __future__ import annotations

import functools
import math
import re
from urllib.parse import quote

import phonenumbers

INVALID_PHONE = "Enter a Kenyan mobile number such as 0712 345 678."
EMPTY_PHONE = "Enter a phone number."
NOT_MOBILE = "That is not a Kenyan mobile number; enter one such as 0712 345 678."

REGION = "KE"
COUNTRY_CODE = "254"
MASK = "******"
MAX_E164_DIGITS = 15
MAX_REPORTED_LENGTH = 40

# Dash-like characters people (and WhatsApp) put inside numbers, including U+2011.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2212"
_SEP = rf"[ \-{_DASHES}\u00a0\u202f\u2009]"
_JUNK_RE = re.compile(rf"[\s\-{_DASHES}().]")

# Prefixed forms (0 / 254 / +254 / 00254) allow a separator between any two digits;
# the bare 9-digit form (7XXXXXXXX / 1XXXXXXXX) only as one run or grouped 3-3-3, to avoid
# reading "700 500 300" style lists of amounts as phones.
_PHONE_RE = re.compile(
    rf"""
    (?<![\w+*])                       # not glued to a word, a code, another number or a mask
    (?:
        (?:(?:\+|00){_SEP}?)?254{_SEP}?(?:\(0\){_SEP}?)?[17](?:{_SEP}?\d){{8}}
      | \(?0\)?{_SEP}?[17](?:{_SEP}?\d){{8}}
      | [17]\d{{8}}
      | [17]\d\d{_SEP}\d{{3}}{_SEP}\d{{3}}
    )
    (?![\d*])
    """,
    re.VERBOSE,
)


class InvalidPhoneNumber(ValueError):
    """Raised when a value is not a valid Kenyan mobile number."""


def normalise_msisdn(value: str) -> str:
    """Return ``value`` as a Kenyan mobile MSISDN ``2547XXXXXXXX`` / ``2541XXXXXXXX``.

    Accepts 07XX…, 01XX…, +2547…, 2547…, 002547…, a bare 7XXXXXXXX, and spaced or dashed
    forms (including U+2011 hyphens). Raises :class:`InvalidPhoneNumber` otherwise.
    """
    if value is None or not str(value).strip():
        raise InvalidPhoneNumber(EMPTY_PHONE)
    return _normalised(str(value).strip())


# libphonenumber takes ~0.3 ms a number; customers' numbers repeat (chats, callbacks, receipts).
# Only valid answers are kept (an exception is never cached), 32k of them at most (~4 MB).
@functools.lru_cache(maxsize=32768)
def _normalised(value: str) -> str:
    raw = _JUNK_RE.sub("", value)
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if raw.startswith("254"):
        raw = "+" + raw
    if not re.fullmatch(r"\+?\d{9,13}", raw):
        raise InvalidPhoneNumber(INVALID_PHONE)
    try:
        number = phonenumbers.parse(raw, REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(INVALID_PHONE)
    if number.country_code != int(COUNTRY_CODE) or not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(INVALID_PHONE)
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhoneNumber(NOT_MOBILE)
    return f"{COUNTRY_CODE}{number.national_number}"


def try_normalise_msisdn(value, *, as_reported: bool = False) -> str | None:
    """Like :func:`normalise_msisdn` but returns None instead of raising.

    Also takes numbers as JSON carries them (``254712345678``, ``254712345678.0``); anything that
    is not text or a whole number (a bool, a list, NaN, 2.5) is None, and so is a masked number
    (``2547****678``): its hidden digits are unknown.

    ``as_reported=True`` reads a phone a payment gateway reports (callbacks, status answers), which
    is never refused for its shape: a number that is not a Kenyan mobile is kept as its ASCII
    digits when it has 1 to 15 of them (E.164); non-ASCII digits, more than 15 digits or more than
    40 characters give None.
    """
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer() or abs(value) >= 1e16:
            return None
        value = int(value)
    text = str(value)
    if "*" in text:
        return None
    if as_reported and (
        len(text) > MAX_REPORTED_LENGTH or any(c.isdigit() and not c.isascii() for c in text)
    ):
        return None
    try:
        return normalise_msisdn(text)
    except InvalidPhoneNumber:
        pass
    if not as_reported:
        return None
    digits = re.sub(r"[^0-9]", "", text)
    return digits if 0 < len(digits) <= MAX_E164_DIGITS else None


def find_kenyan_numbers(text: str) -> list[str]:
    """Find Kenyan mobile numbers in free text; return them normalised, in order, deduplicated.

    Digits glued to letters (M-Pesa codes such as ``SAE3YULR0Y``), masked numbers
    (``2547****111``) and amounts (``1,500``, ``Ksh2,045.00``) are not numbers.
    """
    found: list[str] = []
    for match in _PHONE_RE.finditer(text or ""):
        msisdn = try_normalise_msisdn(match.group(0))
        if msisdn and msisdn not in found:
            found.append(msisdn)
    return found


def mask_msisdn(msisdn: str | None) -> str:
    """Mask a number for display: ``254712345678`` -> ``2547******678``.

    Invalid input is masked generically (first 4 and last 3 characters kept); empty -> "".
    """
    if not msisdn:
        return ""
    value = try_normalise_msisdn(msisdn) or re.sub(r"\s", "", str(msisdn))
    if len(value) <= 7:
        return "*" * len(value)
    return f"{value[:4]}{MASK}{value[-3:]}"


def local_msisdn(msisdn: str, *, spaced: bool = False) -> str:
    """``254712345678`` -> ``0712345678`` (or ``0712 345 678``): how Kenyans write their number.

    Anything that is not a 12-digit 254 number is returned as it is.
    """
    if not (msisdn and len(msisdn) == 12 and msisdn.startswith("254")):
        return msisdn
    local = "0" + msisdn[3:]
    return f"{local[:4]} {local[4:7]} {local[7:]}" if spaced else local


def phone_display(msisdn: str, empty: str = "—") -> str:
    """The one way staff read a number: ``254712345678`` -> ``0712 345 678`` (`empty` when none).
    Search accepts any format (see :func:`try_normalise_msisdn`)."""
    if not msisdn:
        return empty
    if "*" in msisdn and msisdn.startswith(COUNTRY_CODE):
        return "0" + msisdn[len(COUNTRY_CODE) :]  # a masked payer (2547****678 -> 07****678)
    return local_msisdn(msisdn, spaced=True)


def phone_search_term(term: str) -> str:
    """A search box's phone in any form (0712345678, +254 712…) as it is stored (2547…); any
    other term as typed (a code, a name)."""
    return try_normalise_msisdn(term) or term


def whatsapp_link(msisdn: str | None, text: str) -> str:
    """https://wa.me/2547…?text=… opening a chat with the reply typed in; "" without a usable
    number (chat exports often carry only a contact name)."""
    number = try_normalise_msisdn(msisdn) if msisdn else None
    if not number:
        return ""
    return f"https://wa.me/{number}?text={quote(text, safe='')}"
