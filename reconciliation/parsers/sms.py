"""Parse M-Pesa confirmation SMS texts (formats doc §3).

Customer side: till payment (§3.1), paybill payment (§3.2), send money, money received,
reversal, Fuliza (§3.3). Merchant side: till owner receives a payment (§3.4).
Whitespace is collapsed and every space around punctuation is optional, because
Safaricom's spacing is irregular (``Confirmed.on``, ``PMKsh40.00``, ``PM.New``).
Trailing promotional text is ignored.

A till SMS becomes a receipt only when its time and amount are possible (``till_sms_problem``):
not before ``TILL_START_DATE``, not after now + ``CLOCK_SKEW_SECONDS``, and a positive amount with
at most two decimals below ``MAX_PAYMENT_AMOUNT``. ``plausible_receipt_time`` is shared with the
statement parser.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings

from console.kernel.clock import NAIROBI, day_start
from console.kernel.phones import try_normalise_msisdn
from console.kernel.plausible import Implausible, clock_skew, plausible_amount

from .codes import normalise_code

KIND_TILL_PAYMENT = "till_payment"
KIND_PAYBILL_PAYMENT = "paybill_payment"
KIND_SEND_MONEY = "send_money"
KIND_RECEIVED = "received"
KIND_TILL_RECEIVED = "till_received"
KIND_REVERSAL = "reversal"
KIND_FULIZA = "fuliza"

DEFAULT_TILL_START_DATE = dt.date(2020, 1, 1)
RECEIPT_IN_FUTURE = "{what} {when} is in the future: a payment cannot be later than now."
RECEIPT_BEFORE_START = "{what} {when} is before the till started taking payments ({start}, TILL_START_DATE)."
SMS_NO_TIME = "the date and time could not be read"
SMS_REFUSED = "{code}: {reason}"


@dataclass(frozen=True)
class ParsedSms:
    """One parsed M-Pesa SMS. ``phone`` is normalised when complete, or kept as printed
    when masked (``2547******123``). ``occurred_at`` is aware (Africa/Nairobi)."""

    code: str
    kind: str
    amount: Decimal
    counterparty: str
    phone: str | None
    account: str | None
    occurred_at: dt.datetime | None
    balance: Decimal | None


_S = r"\s*"
_CODE = r"(?P<code>[A-Za-z0-9]{10})"
_CONFIRMED = rf"{_CODE}{_S}confirmed\.?{_S}"
# ASCII digits only: Decimal would also read other scripts' digits ("１５０") as a number.
_MONEY = r"K(?:sh|es)\.?{s}(?P<{name}>[0-9]+(?:,[0-9]{{3}})*(?:\.[0-9]{{1,2}})?)"
_AMOUNT = _MONEY.format(s=_S, name="amount")
_DATE = r"(?P<date>\d{1,2}/\d{1,2}/\d{2,4})"
_TIME = r"(?P<time>\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]\.?\s*M\.?)?)"
_WHEN = rf"on{_S}{_DATE}{_S}at{_S}{_TIME}"
_PHONE = r"(?P<phone>\+?254\d{9}|0[17]\d{8})"

_PATTERNS: list[tuple[str, re.Pattern]] = [
    (
        KIND_REVERSAL,
        rf"{_CONFIRMED}Reversal{_S}of{_S}transaction{_S}(?P<name>[A-Za-z0-9]{{10}}).*?"
        rf"reversed{_S}{_WHEN}{_S}and{_S}{_AMOUNT}{_S}is{_S}credited",
    ),
    (
        KIND_FULIZA,
        rf"{_CONFIRMED}Fuliza{_S}M-?PESA{_S}amount{_S}is{_S}{_AMOUNT}",
    ),
    (
        KIND_RECEIVED,
        rf"{_CONFIRMED}You{_S}have{_S}received{_S}{_AMOUNT}{_S}from{_S}(?P<name>.+?)\.?{_S}{_WHEN}",
    ),
    (
        KIND_TILL_RECEIVED,
        rf"{_CONFIRMED}{_WHEN}{_S}{_AMOUNT}{_S}received{_S}from{_S}(?P<name>.+?)"
        rf"(?:\.{_S}|{_S})(?=New{_S}Account|Transaction{_S}cost|$)",
    ),
    (
        KIND_TILL_RECEIVED,
        rf"{_CONFIRMED}{_AMOUNT}{_S}received{_S}from{_S}(?P<name>.+?)\.?{_S}{_WHEN}",
    ),
    (
        KIND_TILL_PAYMENT,
        rf"{_CONFIRMED}{_AMOUNT}{_S}paid{_S}to{_S}(?P<name>.+?)\.?{_S}{_WHEN}",
    ),
    (
        KIND_PAYBILL_PAYMENT,
        rf"{_CONFIRMED}{_AMOUNT}{_S}sent{_S}to{_S}(?P<name>.+?){_S}for{_S}account{_S}"
        rf"(?P<account>.*?)\.?{_S}{_WHEN}",
    ),
    (
        KIND_SEND_MONEY,
        rf"{_CONFIRMED}{_AMOUNT}{_S}sent{_S}to{_S}(?P<name>.+?)(?:{_S}{_PHONE})?\.?{_S}{_WHEN}",
    ),
]
_COMPILED = [(kind, re.compile(pattern, re.I)) for kind, pattern in _PATTERNS]

_BALANCE_RE = re.compile(
    rf"New{_S}(?:M-?PESA{_S})?(?:Account{_S})?balance{_S}is{_S}" + _MONEY.format(s=_S, name="balance"),
    re.I,
)
_SMS_START_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{10}\s*confirmed", re.I)
_MARKS_RE = re.compile(r"[\u200e\u200f\u202a-\u202e\ufeff]")
_SPACES_RE = re.compile(r"[\s\u00a0\u202f\u2009]+")
_LEADING_PHONE_RE = re.compile(r"^(?P<phone>\+?[\d*]{9,13})\s+(?P<name>.+)$")
_TRAILING_PHONE_RE = re.compile(r"^(?P<name>.*?)[\s:]*(?P<phone>\+?254[\d*]{9}|0[17][\d*]{8})$")


def _clean(text: str) -> str:
    return _SPACES_RE.sub(" ", _MARKS_RE.sub("", text or "")).strip()


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.replace(",", ""))
    except InvalidOperation:
        return None


def _occurred_at(date_text: str | None, time_text: str | None) -> dt.datetime | None:
    """``d/m/yy`` + ``h:mm AM`` (or 24h ``HH:MM``) as an aware Nairobi datetime."""
    if not date_text or not time_text:
        return None
    day, month, year_text = date_text.split("/")
    day, month, year = int(day), int(month), int(year_text)
    year += 2000 if len(year_text) == 2 else 0  # "0001" is year 1, not 2001
    clock = re.sub(r"[\s.]", "", time_text).upper()
    meridiem = clock[-2:] if clock.endswith(("AM", "PM")) else ""
    parts = [int(p) for p in clock.rstrip("APM").split(":")]
    hour, minute, second = parts[0], parts[1], parts[2] if len(parts) > 2 else 0
    if meridiem:
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    try:
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=NAIROBI)
    except ValueError:
        return None


def _split_party(name: str) -> tuple[str, str | None]:
    """Split "254721863742 MERCY" / "SOPHIA MWENI 0702972812" / "…M- pesa:2547…" into
    (counterparty, phone). Complete phones are normalised; masked ones kept as printed."""
    name = name.strip().rstrip(".").strip()
    match = _LEADING_PHONE_RE.match(name) or _TRAILING_PHONE_RE.match(name)
    if not match or not match.group("name").strip():
        return name, None
    phone = match.group("phone")
    normalised = None if "*" in phone else try_normalise_msisdn(phone)
    return match.group("name").strip(" -:"), normalised or phone


def _build(kind: str, match: re.Match, text: str) -> ParsedSms | None:
    code = normalise_code(match.group("code"))
    amount = _decimal(match.group("amount"))
    if code is None or amount is None:
        return None
    groups = match.groupdict()
    counterparty, phone = (groups.get("name") or "").strip(), groups.get("phone")
    if kind in (KIND_TILL_RECEIVED, KIND_RECEIVED, KIND_SEND_MONEY):
        counterparty, split_phone = _split_party(counterparty)
        phone = phone or split_phone
    if kind == KIND_FULIZA:
        counterparty = "Fuliza M-PESA"
    if phone and "*" not in phone:
        phone = try_normalise_msisdn(phone) or phone
    balance = _BALANCE_RE.search(text, match.end())
    account = groups.get("account")
    return ParsedSms(
        code=code,
        kind=kind,
        amount=amount,
        counterparty=counterparty.rstrip(".").strip(),
        phone=phone,
        account=account.strip() if account is not None else None,
        occurred_at=_occurred_at(groups.get("date"), groups.get("time")),
        balance=_decimal(balance.group("balance")) if balance else None,
    )


def _parse_at_start(text: str) -> ParsedSms | None:
    for kind, pattern in _COMPILED:
        match = pattern.match(text)
        if match:
            parsed = _build(kind, match, text)
            if parsed:
                return parsed
    return None


def parse_mpesa_sms(text: str) -> ParsedSms | None:
    """Parse one M-Pesa SMS; None when ``text`` holds no recognisable M-Pesa SMS.

    The SMS normally starts the text; otherwise the first SMS found inside it is returned.
    """
    cleaned = _clean(text)
    parsed = _parse_at_start(cleaned)
    if parsed is None:
        found = find_sms_in_text(text)
        parsed = found[0] if found else None
    return parsed


def find_sms_in_text(text: str) -> list[ParsedSms]:
    """Every M-Pesa SMS pasted anywhere inside ``text`` (e.g. a WhatsApp message holding
    the SMS plus "recipient 0712…"), in order. Each SMS is parsed from its code up to the
    next SMS start, so a balance clause is never borrowed from a neighbouring SMS."""
    cleaned = _clean(text)
    starts = [m.start() for m in _SMS_START_RE.finditer(cleaned)]
    results: list[ParsedSms] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(cleaned)
        parsed = _parse_at_start(cleaned[start:end])
        if parsed and parsed not in results:
            results.append(parsed)
    return results


# ---------------------------------------------------------------------------------------------
# Possible receipts
# ---------------------------------------------------------------------------------------------
def till_start() -> dt.datetime:
    """The first moment a till payment can have: midnight (Nairobi) of ``TILL_START_DATE``."""
    day = getattr(settings, "TILL_START_DATE", DEFAULT_TILL_START_DATE)
    return day_start(day)


def plausible_receipt_time(
    when: dt.datetime, *, what: str = "The payment time", now: dt.datetime | None = None
) -> dt.datetime:
    """A till payment's time: not after now + CLOCK_SKEW_SECONDS, not before TILL_START_DATE.

    Raises Implausible with a readable reason (``what`` names the value in it).
    """
    now = now or dt.datetime.now(dt.UTC)
    if when > now + clock_skew():
        raise Implausible(RECEIPT_IN_FUTURE.format(what=what, when=_show_time(when)))
    start = till_start()
    if when < start:
        raise Implausible(RECEIPT_BEFORE_START.format(what=what, when=_show_time(when), start=start.date()))
    return when


def _show_time(when: dt.datetime) -> str:
    # Fixed layout: strftime writes year 1 as "1", which reads like a typo rather than the year.
    return f"{when.day:02d}-{when.month:02d}-{when.year:04d} {when.hour:02d}:{when.minute:02d}"


def till_sms_problem(sms: ParsedSms, *, now: dt.datetime | None = None) -> str | None:
    """Why this till SMS cannot be a receipt ("CODE: reason"), or None when its time and amount
    are possible (see the module docstring). Pure: nothing is read from the database."""
    try:
        if sms.occurred_at is None:
            raise Implausible(SMS_NO_TIME)
        plausible_receipt_time(sms.occurred_at, what="the payment time", now=now)
        plausible_amount(format(sms.amount, "f"), what="the amount")
    except Implausible as exc:
        return SMS_REFUSED.format(code=sms.code, reason=exc.message)
    return None
