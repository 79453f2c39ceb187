"""Reading WhatsApp messages: which ones are payment reports, and the claims found in them.

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
- a pasted customer M-Pesa SMS ("paid to X." / "sent to X for account Y" / "sent to NAME
  07…") gives the claimed amount and merchant for its code: X (never the account Y), or for
  send money the person's name and number as the SMS prints them; the matcher compares it with
  our till's names (parsers.merchant.payee_is_us).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from console.kernel.phones import (
    find_kenyan_numbers,
    local_msisdn,
    try_normalise_msisdn,
)
from reconciliation.models import (
    Claim,
    ClaimReason,
    ClaimStatus,
    WhatsAppMessage,
)
from reconciliation.parsers import find_codes, find_sms_in_text
from reconciliation.parsers.codes import join_across_messages

from .corrections import near_copy, reads_as_correction

EMPTY_MESSAGE = "Paste the customer's message."
UNREADABLE_SUMMARY = (
    "This reads as a payment report but no M-Pesa code could be read from it: read the message "
    "(or ask the customer for the M-Pesa SMS) and verify it against the receipt by hand."
)
SENDER_UNKNOWN = "sender unknown: a saved contact's name and no number in the message"
# A sender's messages this close together are one conversation: a number to load written just
# before the code, a code split over two messages, "paid" just before the code.
CONTEXT_WINDOW = dt.timedelta(minutes=10)
NO_MESSAGES = "The chat export holds no messages."

_CLAIM_WORDS_RE = re.compile(
    r"\b(paid|pay|payed|payment|sent|send|code|mpesa|m-pesa|m pesa|confirmed|transaction|trans|"
    r"lipa|nimelipa|nimelipia|nimetuma|nimesend|tumeilipa|malipo|buy goods|ksh|kes|shs?|bob)\b",
    re.I,
)
# An amount as customers write it: "Ksh150", "150/=", "sh. 1,500", "1500 bob".
_AMOUNT_RE = re.compile(
    r"(?:\b(?:ksh|kes|shs?)\.?\s?\d[\d,]*(?:\.\d{1,2})?)|(?:\b\d[\d,]*\s?(?:/=|/-|bob\b|ksh\b|kes\b))",
    re.I,
)
# A token that looks like a (mistyped or cut) M-Pesa code: a letter, then 6–12 letters/digits
# holding both letters and digits ("UKR8X8UG", "UKR8X8UGJWQ").
_CODE_LIKE_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9]{6,12}\b")


def looks_like_payment_report(text: str) -> bool:
    """A message with no readable code that still reads as a report of a payment: payment words
    (paid, code, nimelipa…), an amount, a code-like token or a pasted M-Pesa SMS. Such a message
    becomes an ``unparseable`` claim, so the payment reaches a person instead of disappearing."""
    text = text or ""
    if find_sms_in_text(text) or any(_code_like(m.group(0)) for m in _CODE_LIKE_RE.finditer(text)):
        return True
    if text.strip().endswith("?"):
        return False  # a question ("how do I pay?", "till number ni gani?") reports nothing
    return bool(_CLAIM_WORDS_RE.search(text) or _AMOUNT_RE.search(text))


def _code_like(token: str) -> bool:
    return any(c.isdigit() for c in token) and sum(c.isalpha() for c in token) >= 2


_PAYMENT_SMS_KINDS = ("till_payment", "paybill_payment", "send_money")


def author_key(name: str | None) -> str:
    """An author name compared tolerantly: case, spacing, a leading "~" and marks ignored."""
    return " ".join(re.sub(r"[^\w\s]", " ", (name or "").casefold()).split())


def business_names(extra: str | None = None) -> set[str]:
    """How our own account may be shown as an author: its WhatsApp profile name
    (SUPPORT_WHATSAPP_NAME, or ``extra`` given with --business-name instead), the shop's and the
    till's names."""
    profile = extra or getattr(settings, "SUPPORT_WHATSAPP_NAME", "")
    names = {getattr(settings, "SHOP_NAME", ""), getattr(settings, "TILL_NAME", ""), profile}
    return {author_key(n) for n in names if author_key(n)}


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
    # Where the recipient came from: "message" (written in it), "context" (the same sender's
    # message just before), "sender" (nobody named: the sender's own number).
    recipient_from: str = "message"

    @property
    def unreadable(self) -> bool:
        return not self.code

    def explanation(self, sender_label: str) -> dict:
        parse = {
            "sender_label": sender_label,
            "ambiguous": self.ambiguous,
            "recipient_from": self.recipient_from,
        }
        if self.unreadable:
            return {"parse": parse, "summary": UNREADABLE_SUMMARY, "signals": []}
        return {"parse": parse}


@dataclass
class ReadMessage:
    """One message as read: what to store and the claims it makes."""

    kind: str  # a MessageKind: claim | unparseable | context | chatter | system | media | business
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
        sender_label and author_key(sender_label) in (our_names or set())
    ):
        return ReadMessage("business")
    codes = find_codes(text, when=sent_at)
    if not codes:
        if not looks_like_payment_report(text):
            return ReadMessage("chatter")
        return ReadMessage("unparseable", [_unreadable_draft(text, sent_at, sender_msisdn, ours)])

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
        recipient_from = "message" if numbers else "sender"
        sender = sender_msisdn or recipient
        if not sender:
            ambiguous.append(SENDER_UNKNOWN)
        sms = sms_by_code.get(code)
        drafts.append(
            ClaimDraft(
                code=code,
                sender_msisdn=sender,
                recipient_msisdn=recipient,
                claimed_at=sent_at,
                claimed_amount=getattr(sms, "amount", None),
                claimed_merchant=_sms_payee(sms)[:120],
                ambiguous=ambiguous,
                recipient_from=recipient_from,
            )
        )
    return ReadMessage("claim", drafts)


def _unreadable_draft(
    text: str, sent_at: dt.datetime, sender_msisdn: str | None, ours: set[str]
) -> ClaimDraft:
    """The claim of a payment report with no readable code: for a person to read."""
    sms = next(iter(find_sms_in_text(text)), None)
    payee = {sms.phone} if sms is not None and sms.phone else set()
    numbers = _recipient_candidates(text, exclude=ours | payee, sender=sender_msisdn, codes=1)
    recipient = numbers[0] if numbers else (sender_msisdn or "")
    return ClaimDraft(
        code="",
        sender_msisdn=sender_msisdn or recipient,
        recipient_msisdn=recipient,
        claimed_at=sent_at,
        claimed_amount=getattr(sms, "amount", None),
        claimed_merchant=_sms_payee(sms)[:120],
        recipient_from="message" if numbers else "sender",
    )


def _sms_payee(sms) -> str:
    """Who the pasted SMS says was paid, as it names them. Send money keeps the person's number
    ("SOPHIA MWENI 0702972812"): a payment to a phone is never a payment to our till."""
    if sms is None:
        return ""
    payee = (sms.counterparty or "").strip()
    if sms.kind == "send_money" and sms.phone:
        payee = f"{payee} {local_msisdn(sms.phone)}".strip()
    return payee


_TARGET_BEFORE_RE = re.compile(
    r"(load|for|to|on|into|recipient|receiver|weka|wekea|tuma|kwa|namba|number\s+is|no\.?|nambari)\W{0,3}$",
    re.I,
)
# The number that paid, not the one to load: "from 07…", "paid with 07…", "nimelipa na 07…",
# "my number is 07…" (any spacing).
_PAYER_BEFORE_RE = re.compile(
    r"(from|using|with|paid\s+by|payer|my\s+number|my\s+number\s+is|my\s+no\.?|my\s+no\.?\s+is|my\s+line|"
    r"namba\s+yangu(?:\s+ni)?|nambari\s+yangu(?:\s+ni)?|(?:lipa|lipia|nimelipa|nimelipia|paid|pay|nimetuma|nimepay|sent)\s+na)\W{0,3}$",
    re.I,
)


_NUMBER_PREFIX_RE = re.compile(r"[\s(+]*(?:254)?[\s()+\-]*0?$")


def _number_contexts(text: str, msisdn: str) -> list[str]:
    """The few words before each place ``msisdn`` is written (in any local/international form)."""
    national = msisdn[3:]
    pattern = r"\D{0,3}".join(national)
    # The words before the number, without its own prefix ("+254 ", "0", "(+254)").
    return [
        _NUMBER_PREFIX_RE.sub("", text[max(0, m.start() - 30) : m.start()])
        for m in re.finditer(pattern, text)
    ]


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


# ---------------------------------------------------------------------------------------------
# Conversations: a sender's messages read together
# ---------------------------------------------------------------------------------------------
TALKING = ("claim", "unparseable", "chatter")


def conversations_read(items: list[tuple[WhatsAppMessage, ReadMessage]], *, ours: set[str]):
    """Read each sender's messages together, as a person would (pure; returns ``items`` with
    some ReadMessages replaced):

    - a code split over two consecutive messages of one sender (within CONTEXT_WINDOW) is one
      claim on the second message when the pieces make exactly one plausible code;
    - a claim whose message names no number to load takes it from the same sender's messages
      just before (within CONTEXT_WINDOW, no other code in between);
    - a payment report without a code ("paid, here is the code") next to a claim of the same
      sender within CONTEXT_WINDOW is part of that report ("context"), not a claim of its own.
    """
    streams: dict[str, list[int]] = {}
    for i, (message, read) in enumerate(items):
        key = message.sender_msisdn or message.sender_label
        if key and read.kind in TALKING:
            streams.setdefault(key, []).append(i)
    reads = [read for _, read in items]
    for indexes in streams.values():
        indexes.sort(key=lambda i: (items[i][0].sent_at, i))
        _join_split_codes(items, reads, indexes, ours)
        _recipients_from_context(items, reads, indexes, ours)
        _reports_beside_claims(items, reads, indexes)
    return [(message, read) for (message, _), read in zip(items, reads, strict=True)]


def _close(items, a: int, b: int) -> bool:
    return abs(items[b][0].sent_at - items[a][0].sent_at) <= CONTEXT_WINDOW


def _join_split_codes(items, reads, indexes, ours) -> None:
    for prev, cur in zip(indexes, indexes[1:], strict=False):
        if reads[prev].kind == "claim" or reads[cur].kind == "claim" or not _close(items, prev, cur):
            continue
        code = join_across_messages(items[prev][0].text, items[cur][0].text, when=items[cur][0].sent_at)
        if not code:
            continue
        message = items[cur][0]
        joined = message_read(
            text=f"{items[prev][0].text}\n{message.text}",
            sent_at=message.sent_at,
            sender_msisdn=message.sender_msisdn or None,
            ours=ours,
        )
        if [d.code for d in joined.drafts] != [code]:
            continue
        reads[cur], reads[prev] = joined, ReadMessage("context")


def _needs_recipient(read: ReadMessage) -> bool:
    return (
        read.kind == "claim" and bool(read.drafts) and all(d.recipient_from == "sender" for d in read.drafts)
    )


def _recipients_from_context(items, reads, indexes, ours) -> None:
    """The number to load for a claim whose message names none: the same sender's message just
    before it (or, failing that, just after it), or the claim it corrects."""
    used: set[int] = set()
    for n, i in enumerate(indexes):
        if not _needs_recipient(reads[i]):
            continue
        for j in reversed(indexes[:n]):
            if not _close(items, j, i):
                break  # too long ago: another conversation
            if reads[j].kind == "claim":
                # Another payment's message, unless this one corrects it: then it is the same load.
                earlier = reads[j].drafts
                if earlier and earlier[0].recipient_from != "sender" and _corrects(items, reads, i, j):
                    _set_recipients(reads[i].drafts, [earlier[0].recipient_msisdn], "correction")
                break
            if _take_numbers(items, reads, i, j, ours, "context"):
                used.add(j)
                break
    for n, i in enumerate(indexes):
        if not _needs_recipient(reads[i]):
            continue
        for j in indexes[n + 1 :]:
            if not _close(items, i, j) or reads[j].kind == "claim" or j in used:
                break
            if _take_numbers(items, reads, i, j, ours, "context_after"):
                used.add(j)
                break


def _corrects(items, reads, i: int, j: int) -> bool:
    """Whether claim message ``i`` corrects the sender's claim message ``j``."""
    codes_i = [d.code for d in reads[i].drafts]
    codes_j = [d.code for d in reads[j].drafts]
    return reads_as_correction(items[i][0].text) or any(near_copy(a, b) for a in codes_i for b in codes_j)


def _take_numbers(items, reads, i: int, j: int, ours, source: str) -> bool:
    drafts = reads[i].drafts
    text, sender = items[j][0].text, items[i][0].sender_msisdn or None
    numbers = _recipient_candidates(text, exclude=ours, sender=sender, codes=len(drafts))
    if not numbers:
        return False
    _set_recipients(drafts, numbers, source)
    return True


def _set_recipients(drafts: list[ClaimDraft], numbers: list[str], source: str) -> None:
    for k, draft in enumerate(drafts):
        draft.recipient_msisdn = numbers[k] if len(numbers) == len(drafts) else numbers[0]
        draft.recipient_from = source
        if len(numbers) > 1 and len(numbers) != len(drafts):
            draft.ambiguous.append("several numbers in the sender's messages: " + ", ".join(numbers))
        if not draft.sender_msisdn:
            # A saved contact's name: the number they wrote stands for them, as in one message.
            draft.sender_msisdn = draft.recipient_msisdn
            draft.ambiguous = [a for a in draft.ambiguous if a != SENDER_UNKNOWN]


def _reports_beside_claims(items, reads, indexes) -> None:
    claims = [i for i in indexes if reads[i].kind == "claim"]
    for i in indexes:
        if reads[i].kind == "unparseable" and any(_close(items, i, c) for c in claims):
            reads[i] = ReadMessage("context")


def claims_create(rows: list[tuple[WhatsAppMessage, ClaimDraft]]) -> int:
    """Insert claims, skipping (sender, code) pairs already claimed. Returns how many are new."""
    if not rows:
        return 0
    pairs = {(d.sender_msisdn, d.code) for _, d in rows if d.code}
    existing = set(Claim.objects.filter(code__in={c for _, c in pairs}).values_list("sender_msisdn", "code"))
    claims, seen = [], set()
    for message, draft in sorted(rows, key=lambda r: r[1].claimed_at):
        key = (draft.sender_msisdn, draft.code)
        if draft.code and (key in existing or key in seen):
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
                # An unreadable report goes straight to a person (the matcher has no code to match).
                status=ClaimStatus.NEEDS_REVIEW if draft.unreadable else ClaimStatus.PENDING,
                reason=ClaimReason.UNPARSEABLE if draft.unreadable else "",
                explanation=draft.explanation(message.sender_label),
            )
        )
    Claim.objects.bulk_create(claims, ignore_conflicts=True)
    return len(claims)
