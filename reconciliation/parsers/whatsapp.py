"""Parse WhatsApp "Export chat" files (formats doc §5), Android and iOS, .txt or .zip.

Header lines look like ``d/m/yy, h:mm am - Author: text`` (Android) or
``[d/m/yy, h:mm:ss] Author: text`` (iOS, comma optional). Lines that do not start with a
header continue the previous message. Day/month order is detected per file, following
Pustur/whatsapp-chat-parser. Times carry no zone; they are taken as Africa/Nairobi.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache

from console.kernel.clock import NAIROBI
from console.kernel.phones import try_normalise_msisdn
from console.kernel.uploads import (
    ZIP_UNREADABLE,
    UploadRefused,
    decode_text,
    is_zip,
    limit,
    read_limited,
    zip_checked,
    zip_member_checked,
)

NO_MESSAGES = "This file is not a WhatsApp chat export: no WhatsApp messages found in it."
EMPTY_FILE = "The chat export is empty: no WhatsApp messages found in it."
BAD_ZIP = "The .zip file could not be opened; export the chat again from WhatsApp."
NO_TXT_IN_ZIP = "The .zip file holds no _chat.txt (or single .txt) chat export."
MANY_TXT_IN_ZIP = "The .zip file holds several .txt files and no _chat.txt; upload the chat .txt itself."
WARN_ORDER_GUESSED = "Day/month order could not be detected from the dates; assumed day first."
WARN_LEADING_LINES = "Ignored {count} line(s) before the first message."
WARN_BAD_DATE = "Line {line_no}: date {date!r} is not a real date; kept as part of the previous message."

WHAT_ZIP = "chat export .zip"
WHAT_TEXT = "chat export"
# An export "with media" also holds photos and voice notes; none is read, none may be huge.
_MEDIA_MEMBER_BYTES = 120 * 1024 * 1024

STYLE_ANDROID = "android"
STYLE_IOS = "ios"

_MARKS_RE = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACES_RE = re.compile(r"[\u00a0\u202f\u2009\u2007]")
_HEADER_RE = re.compile(
    r"""^(?P<open>\[)?
    (?P<date>\d{1,4}[-/.]\s?\d{1,4}[-/.]\s?\d{1,4})\.?
    ,?\s(?:klo\s)?
    (?P<time>\d{1,2}[.:]\d{1,2}(?:[.:]\d{1,2})?)
    (?:\s?(?P<ampm>[ap]\.?\s?m\.?))?
    (?(open)\]\s?|(?:\s[-\u2013]\s?|:\s))
    (?P<body>.*)$""",
    re.I | re.X,
)
_AUTHOR_RE = re.compile(r"^(?P<author>[^:]{1,80}?):\s(?P<text>.*)$", re.S)
_EDITED_RE = re.compile(r"\s*<This message was edited>\s*$", re.I)
_MEDIA_RE = re.compile(
    r"^(?:<Media omitted>|(?:image|video|audio|sticker|GIF|document|Contact card|media) omitted"
    r"|.*<attached: [^>]+>|[\w-]+\.\w+ \(file attached\))",
    re.I | re.S,
)
_DELETED_RE = re.compile(r"^(?:This message was deleted\.?|You deleted this message\.?)$", re.I)
_SYSTEM_TEXT_RES = [
    re.compile(p.replace(".{1,80}", "[^:\n]{1,80}"), re.I)
    for p in (
        r"^Messages to this (?:chat|group) are now secured with end-to-end encryption",
        r"^Messages and calls are end-to-end encrypted",
        r"joined using this group's invite link\.?$",
        r"^.{1,80} (?:changed|deleted) this group's (?:icon|settings)",
        r"^.{1,80} changed the (?:subject|group description|group name)\b",
        r"^.{1,80} created (?:group|this group)\b",
        r"^.{1,80} changed their phone number",
        r"^Your security code with .+ changed",
        r"^.{1,80}'s security code changed",
        r"^This (?:chat|business) (?:is with|uses|is now)",
        r"^.{1,80} turned (?:on|off) disappearing messages",
        r"^You(?:'re| are) now an admin",
        r"^Disappearing messages",
    )
]
_PHONE_AUTHOR_RE = re.compile(r"^\+?[\d\s\-\u2010\u2011()]{7,20}$")


class ChatExportError(ValueError):
    """The upload is not a readable WhatsApp chat export."""


@dataclass
class ChatMessage:
    """One message. ``line_no`` is the 1-based line of its header in the .txt."""

    index: int
    line_no: int
    sent_at: dt.datetime
    author: str | None
    author_phone: str | None
    text: str
    is_system: bool
    is_media: bool
    is_deleted: bool = False
    edited: bool = False


@dataclass
class ChatExport:
    messages: list[ChatMessage]
    days_first: bool
    style: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class _RawMessage:
    line_no: int
    date: str
    time: str
    ampm: str | None
    body: str


def parse_chat_export(data: bytes | str, filename: str = "") -> ChatExport:
    """Parse an exported chat (.txt text/bytes or a .zip holding ``_chat.txt``).

    Raises :class:`ChatExportError` with a readable message for a bad zip or text with no
    WhatsApp message lines; never crashes on junk.
    """
    text = _read_text(data, filename)
    lines = _normalise(text).split("\n")
    raws, leading, bracketed = _split_messages(lines)
    if not raws:
        raise ChatExportError(NO_MESSAGES if text.strip() else EMPTY_FILE)
    warnings = [WARN_LEADING_LINES.format(count=leading)] if leading else []
    ordered = [_date_numbers(r.date) for r in raws if not _is_year_first(r.date)]
    days_first = _detect_days_first(ordered)
    if days_first is None and ordered:
        warnings.append(WARN_ORDER_GUESSED)
    days_first = True if days_first is None else days_first
    messages = _build_messages(raws, days_first, warnings)
    if not messages:
        raise ChatExportError(NO_MESSAGES)
    style = STYLE_IOS if bracketed * 2 >= len(raws) else STYLE_ANDROID
    return ChatExport(messages=messages, days_first=days_first, style=style, warnings=warnings)


# --- reading -----------------------------------------------------------------------------


def _read_text(data: bytes | str, filename: str) -> str:
    if isinstance(data, str):
        return data
    try:
        if filename.lower().endswith(".zip") or is_zip(data):
            read_limited(data, limit("UPLOAD_CHAT_MAX_BYTES"), what=WHAT_ZIP)
            data = _txt_from_zip(data)
        else:
            read_limited(data, limit("UPLOAD_CHAT_TEXT_MAX_BYTES"), what=WHAT_TEXT)
    except UploadRefused as exc:
        raise ChatExportError(exc.message)
    return decode_text(data)


def _txt_from_zip(data: bytes) -> bytes:
    """The chat text of an export .zip: the archive's directory is checked first, then the
    member is unpacked in chunks and refused past UPLOAD_CHAT_TEXT_MAX_BYTES."""
    text_limit = limit("UPLOAD_CHAT_TEXT_MAX_BYTES")
    try:
        archive = zip_checked(data, max_member_bytes=max(text_limit, _MEDIA_MEMBER_BYTES), what=WHAT_ZIP)
    except UploadRefused as exc:
        raise ChatExportError(BAD_ZIP if exc.message == ZIP_UNREADABLE.format(what=WHAT_ZIP) else exc.message)
    with archive:
        names = [
            n
            for n in archive.namelist()
            if n.lower().endswith(".txt") and not n.startswith("__MACOSX/") and not n.endswith("/")
        ]
        chat = [n for n in names if n.rsplit("/", 1)[-1].lower() == "_chat.txt"]
        name = chat[0] if chat else (names[0] if len(names) == 1 else None)
        if name is None:
            raise ChatExportError(MANY_TXT_IN_ZIP if names else NO_TXT_IN_ZIP)
        try:
            return zip_member_checked(archive, name, max_bytes=text_limit, what=WHAT_ZIP)
        except UploadRefused as exc:
            if exc.message == ZIP_UNREADABLE.format(what=WHAT_ZIP):
                raise ChatExportError(BAD_ZIP)
            raise ChatExportError(exc.message)


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    return _SPACES_RE.sub(" ", _MARKS_RE.sub("", text))


def _split_messages(lines: list[str]) -> tuple[list[_RawMessage], int, int]:
    """Group lines into raw messages; return (messages, leading junk lines, bracketed count)."""
    raws: list[_RawMessage] = []
    leading = bracketed = 0
    for line_no, line in enumerate(lines, start=1):
        match = _HEADER_RE.match(line)
        if match:
            raws.append(_RawMessage(line_no, match["date"], match["time"], match["ampm"], match["body"]))
            bracketed += bool(match["open"])
        elif raws:
            raws[-1].body += "\n" + line
        elif line.strip():
            leading += 1
    for raw in raws:
        raw.body = raw.body.rstrip("\n")
    return raws, leading, bracketed


# --- dates -------------------------------------------------------------------------------


def _is_year_first(date_text: str) -> bool:
    return len(re.split(r"[-/.]", date_text, maxsplit=1)[0]) == 4


def _date_numbers(date_text: str) -> tuple[int, int, int]:
    """(first, second, year) for d/m/y or m/d/y; yyyy/mm/dd becomes (dd, mm, yyyy)."""
    parts = [int(p) for p in re.split(r"[-/.]\s?", date_text.strip())]
    if _is_year_first(date_text):
        return parts[2], parts[1], parts[0]
    return parts[0], parts[1], parts[2]


def _detect_days_first(dates: list[tuple[int, int, int]]) -> bool | None:
    """Pustur's checks: any number >12; decreasing within a year; change frequency."""
    for check in (_check_above_12, _check_decreasing, _check_change_frequency):
        result = check(dates)
        if result is not None:
            return result
    return None


def _check_above_12(dates: list[tuple[int, int, int]]) -> bool | None:
    if any(first > 12 for first, _, _ in dates):
        return True
    if any(second > 12 for _, second, _ in dates):
        return False
    return None


def _check_decreasing(dates: list[tuple[int, int, int]]) -> bool | None:
    """Within one year the month never decreases (in a chronological export), so the
    number that does decrease is the day."""
    first_drops = second_drops = False
    for previous, current in zip(dates, dates[1:], strict=False):
        if previous[2] != current[2]:
            continue
        first_drops |= current[0] < previous[0]
        second_drops |= current[1] < previous[1]
    if first_drops != second_drops:
        return first_drops
    return None


def _check_change_frequency(dates: list[tuple[int, int, int]]) -> bool | None:
    """The day changes more often than the month."""
    first_changes = sum(a[0] != b[0] for a, b in zip(dates, dates[1:], strict=False))
    second_changes = sum(a[1] != b[1] for a, b in zip(dates, dates[1:], strict=False))
    if first_changes == second_changes:
        return None
    return first_changes > second_changes


def _to_datetime(raw: _RawMessage, days_first: bool) -> dt.datetime | None:
    first, second, year = _date_numbers(raw.date)
    day, month = (first, second) if days_first or _is_year_first(raw.date) else (second, first)
    year += 2000 if year < 100 else 0
    clock = [int(p) for p in re.split(r"[.:]", raw.time)]
    hour, minute, second_ = clock[0], clock[1], clock[2] if len(clock) > 2 else 0
    if raw.ampm:
        is_pm = raw.ampm.lower().startswith("p")
        hour = hour % 12 + (12 if is_pm else 0)
    try:
        return dt.datetime(year, month, day, hour, minute, second_, tzinfo=NAIROBI)
    except ValueError:
        return None


# --- messages ----------------------------------------------------------------------------


def _build_messages(raws: list[_RawMessage], days_first: bool, warnings: list[str]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for raw in raws:
        sent_at = _to_datetime(raw, days_first)
        if sent_at is None:
            warnings.append(WARN_BAD_DATE.format(line_no=raw.line_no, date=raw.date))
            if messages:
                messages[-1].text += "\n" + raw.body
            continue
        messages.append(_message(len(messages), raw, sent_at))
    return messages


def _message(index: int, raw: _RawMessage, sent_at: dt.datetime) -> ChatMessage:
    author, text = _split_author(raw.body)
    edited = bool(_EDITED_RE.search(text))
    text = _EDITED_RE.sub("", text)
    is_system = author is None
    phone = _author_phone(author)
    stripped = text.strip()
    return ChatMessage(
        index=index,
        line_no=raw.line_no,
        sent_at=sent_at,
        author=author,
        author_phone=phone,
        text=text,
        is_system=is_system,
        is_media=not is_system and bool(_MEDIA_RE.match(stripped)),
        is_deleted=not is_system and bool(_DELETED_RE.match(stripped)),
        edited=edited,
    )


@lru_cache(maxsize=1024)
def _author_phone(author: str | None) -> str | None:
    """The author's MSISDN when the author is shown as a Kenyan phone number."""
    if not author or not _PHONE_AUTHOR_RE.match(author):
        return None
    return try_normalise_msisdn(author)


def _split_author(body: str) -> tuple[str | None, str]:
    """("Author", "text"), or (None, text) for a system event: a line without "Author: ",
    an iOS event written with the chat name as author, or a body that reads as an event
    (``Alice changed the subject to "a: b"``), which is never split on its colon."""
    match = _AUTHOR_RE.match(body)
    if not match:
        return None, body
    if _is_system_text(match["text"]):
        return None, match["text"]
    if _is_system_text(body):
        return None, body
    author = re.sub(r"^~\s*", "", match["author"].strip()).strip()
    return (author or None), match["text"]


def _is_system_text(text: str) -> bool:
    first_line = text.strip().split("\n", 1)[0]
    return any(pattern.search(first_line) for pattern in _SYSTEM_TEXT_RES)
