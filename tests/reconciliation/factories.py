"""Factories for reconciliation tests: receipts go through the service (so they are booked)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

import factory

from console.kernel.mpesa import date_prefix
from reconciliation.models import Claim, ReceiptSource, WhatsAppMessage
from reconciliation.services.receipts import ReceiptDraft, receipt_record_one

NAIROBI = ZoneInfo("Africa/Nairobi")
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=NAIROBI)
_serial = itertools.count(1)
_TAIL_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"  # no look-alike characters


def code_for(day: dt.date, tail: str | None = None) -> str:
    """A realistic 10-char M-Pesa code whose embedded date is ``day`` (formats doc §3.5)."""
    if tail is None:
        n = next(_serial)
        tail = "7" + "".join(
            _TAIL_ALPHABET[(n // len(_TAIL_ALPHABET) ** i) % len(_TAIL_ALPHABET)] for i in range(6)
        )
    return (date_prefix(day) + tail)[:10]


def receipt(
    code: str | None = None, amount="150", paid_at: dt.datetime | None = None, source=ReceiptSource.C2B
):
    paid_at = paid_at or NOW - dt.timedelta(minutes=5)
    code = code or code_for(paid_at.astimezone(NAIROBI).date())
    obj, _ = receipt_record_one(
        ReceiptDraft(
            code=code, amount=Decimal(str(amount)), paid_at=paid_at, source=source, payer_masked="2547****678"
        )
    )
    return obj


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WhatsAppMessage

    sender_label = "254712345678"
    sender_msisdn = "254712345678"
    sent_at = NOW
    text = factory.LazyAttribute(lambda m: "paid")
    fingerprint = factory.Sequence(lambda n: f"fp-{n:08d}")


class ClaimFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Claim

    message = factory.SubFactory(MessageFactory, sent_at=factory.SelfAttribute("..claimed_at"))
    sender_msisdn = factory.Sequence(lambda n: f"2547{n:08d}")
    recipient_msisdn = "254712345678"
    code = factory.LazyAttribute(lambda c: code_for(c.claimed_at.astimezone(NAIROBI).date()))
    claimed_at = NOW
