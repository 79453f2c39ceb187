"""WhatsApp messages and the claims found in them; the agent's decisions on claims.

Reading a message (rules the matcher and the agents rely on):
- every message is kept (WhatsAppMessage, unique fingerprint: re-uploading adds nothing);
- system lines, media placeholders, deleted messages and messages from the business's own
  number create no claim; nor does chatter without an M-Pesa code;
- a message that talks about paying (paid / code / mpesa / confirmed / till…) but holds no valid
  code creates no claim and is counted as "unparseable";
- one claim per code found (several codes -> several claims); the same sender repeating the
  same code is the same claim;
- recipient: the Kenyan number written in the message (never the business number, never the
  number of a person the pasted SMS says was paid), else the sender's own number. With several
  numbers, one introduced as the paying number ("from 07…", "paid with 07…", "my number") is
  dropped, and one introduced as the target ("load 07…", "for 07…", "weka", "recipient") is
  preferred; with one number per code (same count, in order) each code gets its own number;
  otherwise the first is used and the claim is flagged ambiguous for a person to check;
- a media message with a caption holding a code is read like any message;
- in an export, a code already claimed by a known sender and repeated by an author we cannot
  identify at all (a saved name, no number in the message) is a quote, not a new claim;
- sender: the author's number when the export shows a number; when it shows a saved contact's
  NAME, the name is kept as sender_label and the recipient number written in the message is
  used as the sender; with neither, the claim is kept with an empty sender and flagged
  ambiguous ("sender unknown") so it is never auto-verified;
- a pasted customer M-Pesa SMS ("paid to X." / "sent to X for account") gives the claimed
  amount and merchant for its code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from console.audit import audit_record
from console.phones import InvalidPhoneNumber, find_kenyan_numbers, normalise_msisdn, try_normalise_msisdn
from reconciliation.models import (
    Claim,
    ClaimStatus,
    ImportStatus,
    WhatsAppImport,
    WhatsAppMessage,
)
from reconciliation.parsers import ChatExportError, find_codes, find_sms_in_text, parse_chat_export

from .errors import ImportRefused

EMPTY_MESSAGE = "Paste the customer's message."
NO_MESSAGES = "The chat export holds no messages."

_CLAIM_WORDS_RE = re.compile(
    r"\b(paid|pay|payed|sent|send|code|mpesa|m-pesa|m pesa|confirmed|till|transaction|lipa|buy goods|ksh)\b",
    re.I,
)
_PAYMENT_SMS_KINDS = ("till_payment", "paybill_payment", "send_money")


def business_names(extra: str | None = None) -> set[str]:
    """How our own account may be shown as an author in an export made on the business phone."""
    names = {getattr(settings, "SHOP_NAME", ""), getattr(settings, "TILL_NAME", ""), extra or ""}
    return {n.strip().casefold() for n in names if n and n.strip()}


def business_numbers(extra: str | None = None) -> set[str]:
    """Our own WhatsApp number(s): SUPPORT_WHATSAPP plus one given on the command line."""
    numbers = set()
    for value in (getattr(settings, "SUPPORT_WHATSAPP", ""), extra):
        msisdn = try_normalise_msisdn(value) if value else None
        if msisdn:
            numbers.add(msisdn)
    return numbers


def message_fingerprint(sender: str, sent_at: dt.datetime, text: str, occurrence: int) -> str:
    key = "\x1f".join([sender or "", sent_at.isoformat(), text or "", str(occurrence)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class ClaimDraft:
    code: str
    sender_msisdn: str
    recipient_msisdn: str
    claimed_at: dt.datetime
    claimed_amount: Decimal | None = None
    claimed_merchant: str = ""
    ambiguous: list[str] = field(default_factory=list)  # why a person must look

    def explanation(self, sender_label: str) -> dict:
        return {"parse": {"sender_label": sender_label, "ambiguous": self.ambiguous}}


@dataclass
class ReadMessage:
    """One message as read: what to store and the claims it makes."""

    kind: str  # claim | chatter | unparseable | system | media | business
    drafts: list[ClaimDraft] = field(default_factory=list)


def message_read(
    *,
    text: str,
    sent_at: dt.datetime,
    sender_msisdn: str | None,
    sender_label: str = "",
    is_system: bool = False,
    is_media: bool = False,
    ours: set[str] | None = None,
    our_names: set[str] | None = None,
) -> ReadMessage:
    """Pure: classify one message and draft its claims (see the module docstring)."""
    ours = ours or set()
    if is_system:
        return ReadMessage("system")
    if is_media:
        # A screenshot may come with a caption: "IMG-….jpg (file attached)\nUCA1… for 0712…".
        caption = text.split("\n", 1)[1] if "\n" in (text or "") else ""
        if not find_codes(caption, when=sent_at):
            return ReadMessage("media")
        text = caption
    if (sender_msisdn and sender_msisdn in ours) or (
        sender_label and sender_label.strip().casefold() in (our_names or set())
    ):
        return ReadMessage("business")
    codes = find_codes(text, when=sent_at)
    if not codes:
        return ReadMessage("unparseable" if _CLAIM_WORDS_RE.search(text or "") else "chatter")

    sms_by_code: dict[str, object] = {}
    payee_phones = set()
    for sms in find_sms_in_text(text):
        if sms.phone:
            payee_phones.add(sms.phone)
        if sms.kind in _PAYMENT_SMS_KINDS and sms.code not in sms_by_code:
            sms_by_code[sms.code] = sms
    numbers = _recipient_candidates(text, exclude=ours | payee_phones, sender=sender_msisdn, codes=len(codes))

    drafts = []
    for i, code in enumerate(codes):
        ambiguous = []
        if len(numbers) == 1:
            recipient = numbers[0]
        elif len(numbers) > 1 and len(numbers) == len(codes):
            recipient = numbers[i]
        elif numbers:
            recipient = numbers[0]
            ambiguous.append("several numbers in the message: " + ", ".join(numbers))
        else:
            recipient = sender_msisdn or ""
        sender = sender_msisdn or recipient
        if not sender:
            ambiguous.append("sender unknown: a saved contact's name and no number in the message")
        sms = sms_by_code.get(code)
        drafts.append(
            ClaimDraft(
                code=code,
                sender_msisdn=sender,
                recipient_msisdn=recipient,
                claimed_at=sent_at,
                claimed_amount=getattr(sms, "amount", None),
                claimed_merchant=(getattr(sms, "counterparty", "") or "")[:120],
                ambiguous=ambiguous,
            )
        )
    return ReadMessage("claim", drafts)


_TARGET_BEFORE_RE = re.compile(
    r"(load|for|to|on|into|recipient|receiver|weka|wekea|tuma|namba|number is|no\.?|nambari)\W{0,3}$", re.I
)
_PAYER_BEFORE_RE = re.compile(r"(from|using|with|paid by|payer|my number|my no\.?|my line)\W{0,3}$", re.I)


def _number_contexts(text: str, msisdn: str) -> list[str]:
    """The few words before each place ``msisdn`` is written (in any local/international form)."""
    national = msisdn[3:]
    pattern = r"\D{0,3}".join(national)
    return [text[max(0, m.start() - 24) : m.start()].rstrip(" +0(") for m in re.finditer(pattern, text)]


def _recipient_candidates(text: str, *, exclude: set[str], sender: str | None, codes: int) -> list[str]:
    numbers = [n for n in find_kenyan_numbers(text) if n not in exclude]
    if len(numbers) < 2:
        return numbers
    contexts = {n: _number_contexts(text, n) for n in numbers}
    payers = {n for n in numbers if any(_PAYER_BEFORE_RE.search(c) for c in contexts[n])}
    remaining = [n for n in numbers if n not in payers] or numbers
    if codes > 1 and len(remaining) == codes:
        return remaining  # "CODE1 and CODE2 for 0712… and 0722…": paired in order
    targets = [n for n in remaining if any(_TARGET_BEFORE_RE.search(c) for c in contexts[n])]
    if len(targets) == 1:
        return targets
    if len(remaining) > 1 and sender in remaining:
        remaining = [n for n in remaining if n != sender]
    return remaining


def _claims_create(rows: list[tuple[WhatsAppMessage, ClaimDraft]]) -> int:
    """Insert claims, skipping (sender, code) pairs already claimed. Returns how many are new."""
    if not rows:
        return 0
    pairs = {(d.sender_msisdn, d.code) for _, d in rows}
    existing = set(Claim.objects.filter(code__in={c for _, c in pairs}).values_list("sender_msisdn", "code"))
    claims, seen = [], set()
    for message, draft in sorted(rows, key=lambda r: r[1].claimed_at):
        key = (draft.sender_msisdn, draft.code)
        if key in existing or key in seen:
            continue
        seen.add(key)
        claims.append(
            Claim(
                message=message,
                sender_msisdn=draft.sender_msisdn,
                code=draft.code,
                recipient_msisdn=draft.recipient_msisdn,
                claimed_amount=draft.claimed_amount,
                claimed_merchant=draft.claimed_merchant,
                claimed_at=draft.claimed_at,
                # The matcher decides; an unclear sender/recipient makes it stop at "ambiguous".
                status=ClaimStatus.PENDING,
                explanation=draft.explanation(message.sender_label),
            )
        )
    Claim.objects.bulk_create(claims, ignore_conflicts=True)
    return len(claims)


# ---------------------------------------------------------------------------------------------
# One pasted message (admin form)
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def message_paste(*, sender: str, text: str, sent_at: dt.datetime | None = None, user=None) -> dict:
    """Keep one pasted customer message and create its claims, then match them after commit.

    Atomic. Raises InvalidPhoneNumber for a bad sender and ImportRefused for an empty text.
    Returns {message, kind, claims_new, claims}.
    """
    if not (text or "").strip():
        raise ImportRefused(EMPTY_MESSAGE)
    sender_msisdn = normalise_msisdn(sender)
    sent_at = sent_at or timezone.now()
    ours = business_numbers()
    read = message_read(text=text, sent_at=sent_at, sender_msisdn=sender_msisdn, ours=ours)
    occurrence = WhatsAppMessage.objects.filter(
        sender_msisdn=sender_msisdn, sent_at=sent_at, text=text
    ).count()
    message = WhatsAppMessage.objects.create(
        sender_label=sender_msisdn,
        sender_msisdn=sender_msisdn,
        sent_at=sent_at,
        text=text,
        is_from_business=read.kind == "business",
        fingerprint=message_fingerprint(sender_msisdn, sent_at, text, occurrence),
        created_by=user if getattr(user, "pk", None) else None,
    )
    created = _claims_create([(message, d) for d in read.drafts])
    audit_record(
        actor=user,
        action="whatsapp.message_pasted",
        obj=message,
        after={"kind": read.kind, "claims": created},
    )
    _reconcile_codes([d.code for d in read.drafts])
    return {
        "message": message,
        "kind": read.kind,
        "claims_new": created,
        "claims": list(message.claims.all()),
    }


def _reconcile_codes(codes):
    if codes:
        from reconciliation.services.matcher import reconcile_later

        reconcile_later(trigger="import", codes=codes)


# ---------------------------------------------------------------------------------------------
# A whole chat export (.txt or .zip)
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def whatsapp_import(
    *,
    data: bytes,
    filename: str,
    business_number: str | None = None,
    business_name: str | None = None,
    user=None,
) -> WhatsAppImport:
    """Import a WhatsApp chat export set-based. Atomic: a file that cannot be read saves nothing.

    Idempotent: every message has a fingerprint (sender as shown, time, text, occurrence of the
    identical message in the file), so re-uploading the same or an overlapping export adds no
    message and no claim twice. Raises ImportRefused.
    """
    try:
        chat = parse_chat_export(data, filename)
    except ChatExportError as exc:
        raise ImportRefused(str(exc))
    if not chat.messages:
        raise ImportRefused(NO_MESSAGES)
    ours = business_numbers(business_number)
    our_names = business_names(business_name)
    if business_number and not try_normalise_msisdn(business_number):
        raise ImportRefused(f"{business_number!r} is not a Kenyan mobile number.")

    imp = WhatsAppImport(
        original_name=filename[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by=user if getattr(user, "pk", None) else None,
        status=ImportStatus.RUNNING,
    )
    imp.file.save(filename.rsplit("/", 1)[-1] or "chat.txt", ContentFile(data), save=False)
    imp.save()

    kinds: Counter = Counter()
    occurrences: Counter = Counter()
    pending: list[tuple[WhatsAppMessage, ReadMessage]] = []
    for msg in chat.messages:
        author = msg.author or ""
        sender_msisdn = (msg.author_phone or try_normalise_msisdn(author)) if author else None
        read = message_read(
            text=msg.text,
            sent_at=msg.sent_at,
            sender_msisdn=sender_msisdn,
            sender_label=author,
            is_system=msg.is_system,
            is_media=msg.is_media or msg.is_deleted,
            ours=ours,
            our_names=our_names,
        )
        kinds[read.kind] += 1
        key = (author, msg.sent_at.isoformat(), msg.text)
        occurrence = occurrences[key]
        occurrences[key] += 1
        pending.append(
            (
                WhatsAppMessage(
                    chat_import=imp,
                    sender_label=author[:120],
                    sender_msisdn=sender_msisdn or "",
                    sent_at=msg.sent_at,
                    text=msg.text,
                    is_system=msg.is_system,
                    is_from_business=read.kind == "business",
                    fingerprint=message_fingerprint(author, msg.sent_at, msg.text, occurrence),
                    created_by=imp.uploaded_by,
                ),
                read,
            )
        )

    fingerprints = [m.fingerprint for m, _ in pending]
    known = set()
    for i in range(0, len(fingerprints), 1000):
        known.update(
            WhatsAppMessage.objects.filter(fingerprint__in=fingerprints[i : i + 1000]).values_list(
                "fingerprint", flat=True
            )
        )
    fresh = [(m, r) for m, r in pending if m.fingerprint not in known]
    WhatsAppMessage.objects.bulk_create([m for m, _ in fresh], batch_size=1000, ignore_conflicts=True)
    ids = {}
    fresh_prints = [m.fingerprint for m, _ in fresh]
    for i in range(0, len(fresh_prints), 1000):
        ids.update(
            WhatsAppMessage.objects.filter(
                fingerprint__in=fresh_prints[i : i + 1000], chat_import=imp
            ).values_list("fingerprint", "id")
        )
    rows = []
    for message, read in fresh:
        if message.fingerprint in ids:
            message.pk = ids[message.fingerprint]
            rows.extend((message, d) for d in read.drafts)
    rows, quotes = _drop_quotes(rows)
    claims_new = _claims_create(rows)

    imp.status = ImportStatus.DONE
    imp.counts = {
        "messages": len(pending),
        "new_messages": len(ids),
        "known_messages": len(pending) - len(ids),
        "with_code": kinds["claim"],
        "unparseable": kinds["unparseable"],
        "chatter": kinds["chatter"],
        "system": kinds["system"],
        "media": kinds["media"],
        "from_business": kinds["business"],
        "claims_new": claims_new,
        "quotes": quotes,
        "date_order": "day first" if chat.days_first else "month first",
    }
    imp.errors = list(chat.warnings)
    imp.save(update_fields=["status", "counts", "errors"])
    audit_record(actor=user, action="whatsapp.imported", obj=imp, after=imp.counts)
    _reconcile_codes(sorted({d.code for _, d in rows}))
    return imp


def _drop_quotes(rows):
    """Drop claims by an unidentifiable author for codes a known sender already claimed."""
    unknown = {d.code for _, d in rows if not d.sender_msisdn}
    if not unknown:
        return rows, 0
    claimed = {d.code for _, d in rows if d.sender_msisdn} | set(
        Claim.objects.filter(code__in=unknown).exclude(sender_msisdn="").values_list("code", flat=True)
    )
    kept = [(m, d) for m, d in rows if d.sender_msisdn or d.code not in claimed]
    return kept, len(rows) - len(kept)


def sender_for_paste(value: str) -> str:
    """Normalise the sender typed in the paste form (raises InvalidPhoneNumber)."""
    return normalise_msisdn(value)


__all__ = [
    "InvalidPhoneNumber",
    "business_numbers",
    "message_paste",
    "message_read",
    "whatsapp_import",
]
