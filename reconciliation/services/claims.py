"""WhatsApp messages in, claims out: one pasted message (message_paste) or a whole chat export
(whatsapp_import now, whatsapp_import_queue for the worker). How a message is read is
messages.py; the matcher runs for the new codes once the import commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django_q import tasks as django_q_tasks

from console.kernel.audit import AuditAction, audit_record
from console.kernel.phones import (
    InvalidPhoneNumber,
    normalise_msisdn,
    try_normalise_msisdn,
)
from reconciliation.models import (
    Claim,
    ImportStatus,
    WhatsAppImport,
    WhatsAppMessage,
)
from reconciliation.parsers import ChatExportError, parse_chat_export

from .errors import ImportRefused
from .matcher import claims_reconcile, reconcile_later
from .messages import (
    CONTEXT_WINDOW,
    EMPTY_MESSAGE,
    NO_MESSAGES,
    TALKING,
    ReadMessage,
    business_names,
    business_numbers,
    claims_create,
    conversations_read,
    message_fingerprint,
    message_read,
)

__all__ = [
    "message_paste",
    "message_read",
    "whatsapp_import",
    "whatsapp_import_queue",
    "whatsapp_import_run",
]


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
    read = _read_after_earlier_messages(sender_msisdn, sent_at, text, read, ours)
    occurrence = WhatsAppMessage.objects.filter(
        sender_msisdn=sender_msisdn, sent_at=sent_at, text=text
    ).count()
    message = WhatsAppMessage.objects.create(
        sender_label=sender_msisdn,
        sender_msisdn=sender_msisdn,
        sent_at=sent_at,
        text=text,
        is_from_business=read.kind == "business",
        kind=read.kind,
        fingerprint=message_fingerprint(sender_msisdn, sent_at, text, occurrence),
        created_by=user if getattr(user, "pk", None) else None,
    )
    created = claims_create([(message, d) for d in read.drafts])
    audit_record(
        actor=user,
        action=AuditAction.WHATSAPP_MESSAGE_PASTED,
        obj=message,
        after={"kind": read.kind, "claims": created},
    )
    matched = _reconcile_codes([d.code for d in read.drafts])
    return {
        "matched": matched,
        "message": message,
        "kind": read.kind,
        "claims_new": created,
        "claims": list(message.claims.all()),
    }


def _read_after_earlier_messages(sender_msisdn, sent_at, text, read: ReadMessage, ours) -> ReadMessage:
    """A pasted message read in the conversation of the sender's messages already kept from the
    CONTEXT_WINDOW before it (the number to load written before, a code split over two)."""
    if read.kind not in TALKING:
        return read
    earlier = list(
        WhatsAppMessage.objects.filter(
            sender_msisdn=sender_msisdn, sent_at__gte=sent_at - CONTEXT_WINDOW, sent_at__lte=sent_at
        ).order_by("sent_at", "pk")[:20]
    )
    if not earlier:
        return read
    this = WhatsAppMessage(
        sender_msisdn=sender_msisdn, sender_label=sender_msisdn, sent_at=sent_at, text=text
    )
    items = [(m, ReadMessage(m.kind if m.kind in TALKING else "chatter")) for m in earlier] + [(this, read)]
    return conversations_read(items, ours=ours)[-1][1]


logger = logging.getLogger(__name__)
MATCHED_NOW, MATCHED_LATER = "now", "background"


def matches_now(count: int) -> bool:
    """Whether ``count`` new claims are matched in the request (a handful) or by the worker."""
    return count <= getattr(settings, "MATCH_INLINE_MAX_CLAIMS", 20)


def _reconcile_codes(codes) -> str:
    """Match the claims for ``codes`` once the import commits: a handful at once, so the agent
    sees the outcome on the next page; a file's worth in the worker. Returns which."""
    if not codes:
        return ""
    codes = sorted(set(codes))
    if not matches_now(len(codes)):
        reconcile_later(trigger="import", codes=codes)
        return MATCHED_LATER

    def match():
        try:
            claims_reconcile(trigger="import", codes=codes)
        except Exception:  # the claims are saved: the worker matches them instead
            logger.exception("matching %d imported claim(s) at once failed; queued", len(codes))
            reconcile_later(trigger="import", codes=codes)

    transaction.on_commit(match)
    return MATCHED_NOW


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
    """Import a WhatsApp chat export now, set-based. Atomic: a file that cannot be read saves
    nothing. (The admin queues large files instead: whatsapp_import_queue.)

    Idempotent: every message has a fingerprint (sender as shown, time, text, occurrence of the
    identical message in the file), so re-uploading the same or an overlapping export adds no
    message and no claim twice. Raises ImportRefused.
    """
    chat, ours, our_names = _chat_read(data, filename, business_number, business_name)
    imp = _import_record(data, filename, user, ImportStatus.RUNNING, business_number, business_name)
    return _chat_import(imp, chat, ours, our_names, user)


@transaction.atomic
def whatsapp_import_queue(
    *,
    data: bytes,
    filename: str,
    business_number: str | None = None,
    business_name: str | None = None,
    user=None,
) -> WhatsAppImport:
    """Keep the upload and let the worker read it (whatsapp_import_run): a big export is never
    parsed inside a web request. Raises ImportRefused for a bad business number."""
    _business_number_check(business_number)
    imp = _import_record(data, filename, user, ImportStatus.QUEUED, business_number, business_name)
    audit_record(actor=user, action=AuditAction.WHATSAPP_QUEUED, obj=imp, after={"bytes": len(data)})
    transaction.on_commit(
        lambda: django_q_tasks.async_task("reconciliation.tasks.whatsapp_import_run", imp.pk)
    )
    return imp


def whatsapp_import_run(*, import_id: int) -> WhatsAppImport:
    """The worker's import of a queued export. Runs once (a second task finds it taken); a file
    that cannot be read is marked failed with the reason and saves no message or claim."""
    if not WhatsAppImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING
    ):
        return WhatsAppImport.objects.get(pk=import_id)
    imp = WhatsAppImport.objects.get(pk=import_id)
    try:
        with transaction.atomic():
            with imp.file.open("rb") as handle:
                data = handle.read()
            chat, ours, our_names = _chat_read(
                data, imp.original_name, imp.business_number or None, imp.business_name or None
            )
            return _chat_import(imp, chat, ours, our_names, imp.uploaded_by)
    except ImportRefused as exc:
        imp.status, imp.errors = ImportStatus.FAILED, [exc.message]
        imp.save(update_fields=["status", "errors"])
        audit_record(
            actor=imp.uploaded_by, action=AuditAction.WHATSAPP_REFUSED, obj=imp, after={"error": exc.message}
        )
        return imp


def _business_number_check(business_number: str | None) -> None:
    if business_number and not try_normalise_msisdn(business_number):
        raise ImportRefused(f"{business_number!r} is not a Kenyan mobile number.")


def _chat_read(data: bytes, filename: str, business_number, business_name):
    """The parsed export and how our own account shows in it. Raises ImportRefused."""
    _business_number_check(business_number)
    try:
        chat = parse_chat_export(data, filename)
    except ChatExportError as exc:
        raise ImportRefused(str(exc))
    if not chat.messages:
        raise ImportRefused(NO_MESSAGES)
    return chat, business_numbers(business_number), business_names(business_name)


def _import_record(data, filename, user, status, business_number, business_name) -> WhatsAppImport:
    imp = WhatsAppImport(
        original_name=filename[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by=user if getattr(user, "pk", None) else None,
        status=status,
        business_number=(try_normalise_msisdn(business_number) or "") if business_number else "",
        business_name=(business_name or "")[:120],
    )
    imp.file.save(filename.rsplit("/", 1)[-1] or "chat.txt", ContentFile(data), save=False)
    imp.save()
    return imp


def _chat_import(imp: WhatsAppImport, chat, ours: set[str], our_names: set[str], user) -> WhatsAppImport:
    """Keep every message of ``chat`` and create its claims (inside the caller's transaction)."""
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
    pending = conversations_read(pending, ours=ours)
    kinds = Counter(read.kind for _, read in pending)
    for message, read in pending:
        message.kind = read.kind

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
    claims_new = claims_create(rows)

    imp.status = ImportStatus.DONE
    imp.counts = {
        "messages": len(pending),
        "new_messages": len(ids),
        "known_messages": len(pending) - len(ids),
        "with_code": kinds["claim"],
        "unparseable": kinds["unparseable"],
        "context": kinds["context"],
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
    audit_record(actor=user, action=AuditAction.WHATSAPP_IMPORTED, obj=imp, after=imp.counts)
    matched = _reconcile_codes(sorted({d.code for _, d in rows}))
    if matched:
        imp.counts["matched"] = matched
        imp.save(update_fields=["counts"])
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


__all__ = [
    "InvalidPhoneNumber",
    "business_numbers",
    "message_paste",
    "message_read",
    "whatsapp_import",
    "whatsapp_import_queue",
    "whatsapp_import_run",
]
