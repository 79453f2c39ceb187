"""M-Pesa transaction codes (receipt numbers): normalise, find in messages, compare.

Formats doc §3.5: a current code is 10 upper-case alphanumerics. Inferred (not official)
structure: char 1 = year (L=2017 … U=2026, one letter per year), char 2 = month (A–L),
char 3 = day (1–9, then A=10 … V=31).

Customers retype codes grouped any way they like (``UKO 774 0317``, ``UKR-994-ENSZ``,
``uko 120 pjlm``, one piece per line). :func:`find_codes` reads those groupings, but a wrong
code costs more than a missed one (a message without a code is still reviewed by a person),
so pieces are joined only under the guards listed there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from console.kernel.clock import nairobi_day, today
from console.kernel.mpesa import CODE_LENGTH, CODE_RE, INNER_SEPARATORS_RE, embedded_date, normalise_code

# A code read from pieces must carry a date from this many days before the message to this
# many after it (a phone clock a little off); customers report a payment within days.
JOIN_DAYS_BEFORE = 31
JOIN_DAYS_AFTER = 1
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212"
_HORIZONTAL = " \t\u00a0\u202f\u2009"
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")
_SEPARATOR_CHARS_RE = re.compile(f"[{re.escape(_HORIZONTAL + _DASHES)}\r\n]+")
_HORIZONTAL_RUN_RE = re.compile(f"[{re.escape(_HORIZONTAL)}]+")
# Punctuation that glues a token to its neighbour (``+254``, ``150/=``, ``#2``), and that glues
# it only when another letter or digit follows (``1.5GB``, ``1,500``, ``it's``; ``10:15`` after).
_GLUE = "+*#@_/\\&=%"
_GLUE_INSIDE = ".,'"
_URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b\S+\.(?:com|ly|ke|org|net|me|io|co)/\S*|\S+@\S+\.\S+", re.I)
# Letters prefix then seven+ digits: currency or account refs such as KSH1500000, ACC1234567.
_LETTERS_THEN_DIGITS_RE = re.compile(r"^[A-Z]{2,3}\d{7,8}$")
# Kenyan mobile numbers as digits (07…, 01…, 2547…, 002547…); the bare 9-digit form separately.
_PHONE_DIGITS_RE = re.compile(r"(?:0|254|00254)[17]\d{8}")
_BARE_PHONE_RE = re.compile(r"[17]\d{8}")
# Dates with a four-digit year, day first or year first, split by dashes, dots, slashes or spaces.
_DATE_SEP = f"[{re.escape(_DASHES)}/. ]"
_DATE_RE = re.compile(
    rf"(?<![\w])(?:(?:0?[1-9]|[12]\d|3[01])({_DATE_SEP})(?:0?[1-9]|1[0-2])\1(?:19|20)\d\d"
    rf"|(?:19|20)\d\d({_DATE_SEP})(?:0?[1-9]|1[0-2])\2(?:0?[1-9]|[12]\d|3[01]))(?!\w)"
)
# Pieces that are words, units or money in the messages customers send: a join holding one is
# a sentence, not a code (``uko na 15 bob``, ``for 2GB``, ``the last 24 h``, ``ksh150``). No
# single letters: those stand for themselves in ``U K R 9 9 4 E N S Z``.
_WORD_PARTS_TEXT = """
    am an as at be by do go he hi if in is it me my no of ok on or pm so to up us we
    all and any are ask bad big but buy can day did for get got had has her him his how its let
    may new not now off old one our out own pay put say see she the too try two use was way who
    why yes yet you bob gb mb kb hr hrs min mins sec kes ksh kshs sh shs sms tel plz pls thx ref
    acc bal asap via
    about after again also back been best call came come could does done dont each even ever
    find from gave give good have help here home into just know last late like line long look
    made make many more most much must need next none once only over paid same says send sent
    some soon such sure take than that them then they this time told took very want week weeks
    well went were what when will with work year your data code till load days month hours
    today phone number account please sorry thanks thank hello kindly confirmed balance bundle
    bundles airtime safaricom mpesa money cash where which there their these those other would
    should being doing still since while until later yesterday morning evening night using
    goods boss sir bro mine hey
    na ya wa za ku kwa ni hii hiyo hizi ile ule huyu yule yangu yako yake wangu mimi wewe yeye
    sisi sawa hapo pia tena habari leo jana kesho saa pesa bado weka tuma sana asante tafadhali
    bei nimelipa nimetuma sijapata nataka naomba niko uko iko ama kama lakini tu
"""
WORD_PARTS = frozenset(_WORD_PARTS_TEXT.split())
_UNIT_PART_RE = re.compile(
    r"\d+(?:gb|mb|kb|hrs?|mins?|am|pm|bob|days?|wks?|sms|ksh|kes|shs?)|(?:12|24|36|48|72)h|(?:ksh|kes|kshs|sh|shs)\d+"
)

# Look-alike slips when a customer retypes a code; each maps to one canonical character.
LOOKALIKE_SLIPS = {"O": "0", "I": "1", "S": "5", "B": "8", "Z": "2"}
_LOOKALIKES = str.maketrans(LOOKALIKE_SLIPS)

# Words that happen to be 10 alphanumerics and must never be read as codes.
_STOPWORDS = frozenset({"SAFARICOM1", "WHATSAPP10"})


def _reference_day(when: dt.datetime | dt.date | None) -> dt.date:
    """The day a message was written (Nairobi), or today when the caller does not say."""
    return today() if when is None else nairobi_day(when)


def _date_is_recent(code: str, day: dt.date) -> bool:
    """The code's embedded date lies in the window a customer reports a payment in."""
    embedded = embedded_date(code)
    if embedded is None:
        return False
    return day - dt.timedelta(days=JOIN_DAYS_BEFORE) <= embedded <= day + dt.timedelta(days=JOIN_DAYS_AFTER)


def _looks_like_code_token(token: str, day: dt.date) -> str | None:
    """A single 10-char token: upper-case ones need only the basic shape; lower/mixed case
    ones (typed by hand, or ordinary words like ``password12``) must also carry a decodable
    embedded date. Two or three letters then only digits (``KSH1500000``, ``ACC1234567``, but
    also the real ``UKO7740317``) is a code only with a recent embedded date."""
    code = normalise_code(token)
    if code is None and token.isalpha() and token.isupper() and CODE_RE.match(token):
        # About one code in fourteen has no digit at all ("UJTZVLKAYR"): read in capitals only,
        # and only with a recent embedded date, so ordinary capitalised words stay words.
        return token if token not in _STOPWORDS and _date_is_recent(token, day) else None
    if code is None or code in _STOPWORDS:
        return None
    if _LETTERS_THEN_DIGITS_RE.match(code) and not _date_is_recent(code, day):
        return None
    if token != token.upper() and embedded_date(code) is None:
        return None
    return code


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    blocked: bool = False  # part of a phone number or a date: never part of a code


def _tokens(text: str) -> list[_Token]:
    """Alphanumeric runs of ``text``, those inside a Kenyan phone number or a date marked."""
    raw = [_Token(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
    blocked = [False] * len(raw)
    for m in _DATE_RE.finditer(text):
        for k, tok in enumerate(raw):
            if tok.start < m.end() and m.start() < tok.end:
                blocked[k] = True
    # Phones however grouped: any run of digit-only tokens, joined by separators, that spells one.
    for i, tok in enumerate(raw):
        if not tok.text.isdigit():
            continue
        digits = ""
        for j in range(i, min(i + 6, len(raw))):
            if j > i and not (raw[j].text.isdigit() and _is_separator(text[raw[j - 1].end : raw[j].start])):
                break
            digits += raw[j].text
            if _is_phone(digits, [t.text for t in raw[i : j + 1]]):
                for k in range(i, j + 1):
                    blocked[k] = True
    return [_Token(t.text, t.start, t.end, b) for t, b in zip(raw, blocked, strict=True)]


def _is_phone(digits: str, groups: list[str]) -> bool:
    if _PHONE_DIGITS_RE.fullmatch(digits):
        return True
    # A bare 7XXXXXXXX only as one run or grouped 3-3-3: "700 500 300" may be amounts, but a
    # code never holds nine digits, so nothing is lost by blocking those groupings.
    if not _BARE_PHONE_RE.fullmatch(digits):
        return False
    return len(groups) == 1 or [len(g) for g in groups] == [3, 3, 3]


def _is_separator(gap: str) -> bool:
    """What may stand between two parts of one code: a few spaces, at most one dash and at
    most one line break (``" "``, ``"-"``, ``" - "``, ``"\\n"``, ``" \\n "``, ``"-\\n"``)."""
    if not gap or len(gap) > 9 or not _SEPARATOR_CHARS_RE.fullmatch(gap):
        return False
    if sum(ch in _DASHES for ch in gap) > 1 or gap.count("\n") > 1:
        return False
    if "\r" in gap.replace("\r\n", ""):
        return False
    return all(len(run) <= 3 for run in _HORIZONTAL_RUN_RE.findall(gap))


def _glued_left(text: str, start: int) -> bool:
    """The token at ``start`` is glued to what precedes it (``+254``, ``1.5``, ``it's``)."""
    if start == 0:
        return False
    ch = text[start - 1]
    if ch in _GLUE:
        return True
    return ch in _GLUE_INSIDE and start >= 2 and text[start - 2].isalnum()


def _glued_right(text: str, end: int) -> bool:
    """The token ending at ``end`` is glued to what follows (``150/=``, ``10:15``, ``1,500``)."""
    if end >= len(text):
        return False
    ch = text[end]
    if ch in _GLUE:
        return True
    return ch in _GLUE_INSIDE + ":" and end + 1 < len(text) and text[end + 1].isalnum()


def _one_case(parts: list[str]) -> bool:
    """Every part with letters is all upper or all lower case, the same for all of them."""
    cased = [p for p in parts if not p.isdigit()]
    return all(p.isupper() for p in cased) or all(p.islower() for p in cased)


def _word_then_number(parts: list[str]) -> bool:
    """Pieces of letters only, then pieces of digits only (``till 123456``, ``UKO 774 0317``)."""
    kinds = ["a" if p.isalpha() else "d" if p.isdigit() else "m" for p in parts]
    return "m" not in kinds and kinds == sorted(kinds)


def _joined_code(parts: list[str], day: dt.date) -> str | None:
    """The code spelt by ``parts`` (two or more pieces of one code), or None.

    Guards, each against a kind of wrong code:
    - one letter case throughout (all-digit parts have none) and the code's shape
      (:func:`normalise_code`);
    - a recent embedded date (:data:`JOIN_DAYS_BEFORE`), so the first part starts with the
      year/month/day letters of a payment made shortly before ``day``;
    - no part that is a word, a unit or money (``na``, ``bob``, ``sorry``, ``2GB``, ``24hrs``,
      ``ksh150``); a first part of up to three characters is the date prefix and may happen to be
      a word (``uko 120 pjlm``);
    - pieces of only letters then pieces of only digits are a word and a number
      (``till 123456``, ``uko 6944804``, ``UKO 6944804``) unless written in upper case, the
      letters being the date prefix (three at most) and the digits themselves grouped
      (``UKO 774 0317``).
    """
    if len(parts) < 2 or not _one_case(parts):
        return None
    code = normalise_code("".join(parts))
    if code is None or code in _STOPWORDS or not _date_is_recent(code, day):
        return None
    if _word_then_number(parts):
        letters = sum(ch.isalpha() for ch in code)
        numbers = sum(p.isdigit() for p in parts)
        # In lower case only a three-letter date prefix then grouped digits ("ujs 225 3623").
        if letters > 3 or numbers < 2 or (any(p.islower() for p in parts) and len(parts[0]) != 3):
            return None
    for n, part in enumerate(parts):
        lower = part.lower()
        if _UNIT_PART_RE.fullmatch(lower) or (lower in WORD_PARTS and (n > 0 or len(part) > 3)):
            return None
    return code


def _join_at(text: str, tokens: list[_Token], i: int, day: dt.date) -> tuple[str, int] | None:
    """The code spelt by tokens ``i``… joined by separators up to exactly 10 characters."""
    first = tokens[i]
    if first.blocked or not first.text[0].isalpha() or _glued_left(text, first.start):
        return None
    total = len(first.text)
    j = i
    while total < CODE_LENGTH:
        j += 1
        if j >= len(tokens) or tokens[j].blocked:
            return None
        if not _is_separator(text[tokens[j - 1].end : tokens[j].start]):
            return None
        total += len(tokens[j].text)
    if total != CODE_LENGTH or _glued_right(text, tokens[j].end):
        return None
    code = _joined_code([t.text for t in tokens[i : j + 1]], day)
    return (code, j + 1) if code else None


def find_codes(text: str, when: dt.datetime | dt.date | None = None) -> list[str]:
    """Every M-Pesa code in a customer message, normalised, in order, deduplicated.

    ``when`` is when the message was written (default: now); a code read from pieces must
    carry an embedded date close to it.

    Heuristics:
    - URLs and e-mail addresses are blanked first.
    - The text is split into alphanumeric tokens. A whole 10-char token is a code when it
      passes :func:`normalise_code` (so words without digits like ``CONFIRMED`` and
      phones/amounts starting with a digit are out), is not two or three letters followed only
      by 7+ digits (``KSH1500000``) unless its date is recent, and, if not written in upper
      case, carries a decodable date.
    - Otherwise consecutive tokens, any number of them, joined only by separators (a few spaces,
      a dash, one line break: see :func:`_is_separator`) whose lengths add up to exactly 10 are
      tried as one code: ``UKO 774 0317``, ``UKR-994-ENSZ``, ``uko 120 pjlm``, ``UKQHK2⏎6JKX``,
      ``U K R 9 9 4 E N S Z``. Tokens of a phone number (``0712 345 678``, ``+254 712 345 678``)
      or of a date (``12-03-2026``) are never pieces; the pieces must not be glued to the text
      around them by other punctuation (``1.5GB``, ``10:15``, ``1,500``, ``150/=``); and the
      joined code must pass :func:`_joined_code`.
    - Where two different codes could be read from overlapping tokens, neither is read: a wrong
      code is worse than a missed one (a missed one is still reviewed by a person).
    """
    day = _reference_day(when)
    cleaned = _URL_RE.sub(" ", text or "")
    tokens = _tokens(cleaned)
    found: list[tuple[int, int, str]] = []  # (first token, past last token, code)
    for i, tok in enumerate(tokens):
        if len(tok.text) == CODE_LENGTH:
            code = _looks_like_code_token(tok.text, day)
            if code:
                found.append((i, i + 1, code))
        elif len(tok.text) < CODE_LENGTH:
            joined = _join_at(cleaned, tokens, i, day)
            if joined:
                found.append((i, joined[1], joined[0]))
    codes: list[str] = []
    for start, stop, code in found:
        clash = any(s < stop and start < e and c != code for s, e, c in found)
        if not clash and code not in codes:
            codes.append(code)
    return codes


def join_across_messages(
    first_text: str, second_text: str, when: dt.datetime | dt.date | None = None
) -> str | None:
    """The code a sender split over two consecutive messages, or None.

    ``first_text`` must end with the code's first piece(s) and ``second_text`` start with the
    rest (``"Mpesa code UKQHK2"`` then ``"6JKX"``; ``"paid UKR 994"`` then
    ``"ENSZ load 0712345678"``). Read only when neither message alone holds a code and exactly
    one way of joining the trailing pieces of the first to the leading pieces of the second
    spells a code passing the same guards as :func:`find_codes` (``when`` is the second
    message's time).
    """
    if find_codes(first_text, when) or find_codes(second_text, when):
        return None
    day = _reference_day(when)
    first = _URL_RE.sub(" ", first_text or "")
    second = _URL_RE.sub(" ", second_text or "")
    # Read as one text so that a phone number split over the two messages is still one number.
    both = first + "\n" + second
    tokens = _tokens(both)
    first_tokens = [t for t in tokens if t.end <= len(first)]
    second_tokens = [t for t in tokens if t.start > len(first)]
    if not first_tokens or not second_tokens:
        return None
    between = both[first_tokens[-1].end : second_tokens[0].start].strip()
    if between and not (len(between) == 1 and between in _DASHES):
        return None  # the pieces must end the first message and start the second (a dash may stay)

    def chain(tokens: list[_Token], text: str, backwards: bool) -> list[_Token]:
        ordered = tokens[::-1] if backwards else tokens
        pieces: list[_Token] = []
        total = 0
        for tok in ordered:
            if tok.blocked or total + len(tok.text) >= CODE_LENGTH:
                break
            if pieces:
                a, b = (tok, pieces[-1]) if backwards else (pieces[-1], tok)
                if not _is_separator(text[a.end : b.start]):
                    break
            pieces.append(tok)
            total += len(tok.text)
        return pieces[::-1] if backwards else pieces

    ends = chain(first_tokens, both, backwards=True)  # last pieces of the first message
    starts = chain(second_tokens, both, backwards=False)  # first pieces of the second
    codes = set()
    for k in range(1, len(ends) + 1):
        for m in range(1, len(starts) + 1):
            parts = ends[-k:] + starts[:m]
            if sum(len(p.text) for p in parts) != CODE_LENGTH or not parts[0].text[0].isalpha():
                continue
            if _glued_left(both, parts[0].start) or _glued_right(both, parts[-1].end):
                continue
            code = _joined_code([p.text for p in parts], day)
            if code:
                codes.add(code)
    return codes.pop() if len(codes) == 1 else None


def lookalike_key(code: str) -> str:
    """Key equal for codes that differ only by O/0, I/1, S/5, B/8, Z/2 slips."""
    value = normalise_code(code) or INNER_SEPARATORS_RE.sub("", str(code or "")).upper()
    return value.translate(_LOOKALIKES)


def is_lookalike(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are different codes with the same :func:`lookalike_key`."""
    norm_a = normalise_code(a) or str(a or "").upper()
    norm_b = normalise_code(b) or str(b or "").upper()
    return norm_a != norm_b and lookalike_key(a) == lookalike_key(b)


def is_date_plausible(code: str, when: dt.datetime | dt.date, tolerance_days: int = 2) -> bool | None:
    """Whether the code's embedded date is within ``tolerance_days`` of ``when``.

    ``when`` may be an aware datetime (compared in Africa/Nairobi), a naive datetime
    (taken as Nairobi local time) or a date. None when the code's date is undecodable.
    """
    embedded = embedded_date(code)
    if embedded is None:
        return None
    return abs((nairobi_day(when) - embedded).days) <= tolerance_days
