"""The matcher verifies a batch as a set (decisions.claims_verify_auto_many): one transaction and
a fixed number of queries for any number of claims, the same outcomes as one claim at a time, and
a refused item or a failed set falls back to one claim at a time, which says why."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from console.kernel.audit_actions import AuditAction
from console.models import AuditEvent
from ledger import books
from ledger.models import EntryKind, JournalEntry, Posting
from ledger.services import till_order_create_paid
from reconciliation.models import Claim, ClaimStatus
from reconciliation.services import decisions
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, MessageFactory, code_for, receipt

pytestmark = pytest.mark.django_db


def run():
    return claims_reconcile(trigger="test", now=NOW)


def verifiable(n, amount="250"):
    """n claims, each with its own till receipt of a bundle's exact price."""
    return [ClaimFactory(code=receipt(amount=amount).code) for _ in range(n)]


def run_queries():
    with CaptureQueriesContext(connection) as ctx:
        result = run()
    return result, len(ctx.captured_queries)


def test_a_batch_costs_the_same_queries_for_three_claims_or_twelve(bundles):
    verifiable(3)
    small, small_queries = run_queries()
    verifiable(12)
    large, large_queries = run_queries()
    assert small.counts["verified"] == 3 and large.counts["verified"] == 12
    assert large_queries == small_queries


def test_every_claim_of_the_set_is_booked_like_one_verified_alone(bundles):
    claims = verifiable(5)
    claims_late = [ClaimFactory(code=receipt(amount="150").code, claimed_at=NOW - dt.timedelta(minutes=1))]
    start = JournalEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
    run()
    verified = list(
        Claim.objects.filter(pk__in=[c.pk for c in claims + claims_late]).order_by("claimed_at", "pk")
    )
    assert {c.status for c in verified} == {ClaimStatus.VERIFIED}
    entries = list(JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED).order_by("seq"))
    # Numbered gaplessly after what was there, in the order the claims were made.
    assert [e.seq for e in entries] == list(range(start + 1, start + 7))
    assert [e.order_id for e in entries] == [c.order_id for c in verified]
    for claim, entry in zip(verified, entries, strict=True):
        order = claim.order
        assert claim.receipt.order_id == order.pk and order.mpesa_receipt == claim.receipt.code
        assert order.price == claim.receipt.amount == order.amount_paid
        assert entry.idempotency_key == f"claim_verified:{order.reference}"
        assert entry.memo == f"Till claim {claim.receipt.code} paid {order.reference}"
        assert entry.created_by_id is None and entry.channel == "till"
        assert sorted(Posting.objects.filter(entry=entry).values_list("account__key", "amount")) == [
            ("bundles_owed", -order.price),
            ("unallocated_receipts", order.price),
        ]
        assert claim.decision_note.startswith("Verified automatically: ")
        assert claim.explanation["summary"] in claim.decision_note
        audit = AuditEvent.objects.get(action=AuditAction.CLAIM_VERIFIED, object_id=str(claim.pk))
        assert audit.after["price"] == str(order.price) and audit.after["unallocated"] == "0.00"
        assert audit.after["order"] == order.reference and audit.before["status"] == ClaimStatus.PENDING
        assert (
            AuditEvent.objects.filter(action=AuditAction.ORDER_CREATE, object_id=str(order.pk)).count() == 1
        )
    assert books.books_check() == []


def test_a_lookalike_of_a_code_verified_in_the_batch_is_decided_after_it(bundles):
    r = receipt(code=code_for(NOW.date(), "70KX3SY"), amount="250")
    exact = ClaimFactory(code=r.code, claimed_at=NOW - dt.timedelta(minutes=3))
    lookalike = ClaimFactory(code=r.code.replace("0", "O"), claimed_at=NOW - dt.timedelta(minutes=2))
    run()
    exact.refresh_from_db()
    lookalike.refresh_from_db()
    assert exact.status == ClaimStatus.VERIFIED
    # Its look-alike receipt is used: never suggested as the claim's payment.
    assert lookalike.status != ClaimStatus.VERIFIED and lookalike.suggested_receipt_id != r.pk


def test_an_item_the_set_refuses_is_returned_and_nothing_is_written_for_it(bundles):
    good, used = verifiable(2)
    used_receipt = used.code
    # Between the matcher's reading and its writing, an STK order took the second code.
    till_order_create_paid(
        bundle=bundles["daily-5gb"],
        price=Decimal("250"),
        payer="254700000001",
        recipient="254700000001",
        receipt_code=used_receipt,
        paid_at=NOW,
        created_by=None,
    )
    items = [
        (c.pk, c_receipt, bundles["daily-5gb"].pk, {"summary": "test"})
        for c, c_receipt in ((good, _receipt_id(good)), (used, _receipt_id(used)))
    ]
    left = decisions.claims_verify_auto_many(items)
    assert [item[0] for item in left] == [used.pk]
    good.refresh_from_db()
    used.refresh_from_db()
    assert good.status == ClaimStatus.VERIFIED
    assert used.status == ClaimStatus.PENDING and used.order_id is None
    assert not JournalEntry.objects.filter(receipt_code=used_receipt, kind=EntryKind.CLAIM_VERIFIED).exists()


def test_a_refused_item_goes_one_by_one_and_counts_as_a_lost_race(bundles):
    good, raced = verifiable(2)
    real = decisions.claims_verify_auto_many

    def someone_else_first(items):
        # An agent verifies the second claim's receipt for another order meanwhile.
        till_order_create_paid(
            bundle=bundles["daily-5gb"],
            price=Decimal("250"),
            payer="254700000002",
            recipient="254700000002",
            receipt_code=raced.code,
            paid_at=NOW,
            created_by=None,
        )
        return real(items)

    with mock.patch.object(decisions, "claims_verify_auto_many", side_effect=someone_else_first):
        result = run()
    good.refresh_from_db()
    raced.refresh_from_db()
    assert good.status == ClaimStatus.VERIFIED
    assert result.counts["verified"] == 1 and result.counts["lost_race"] == 1
    assert raced.status == ClaimStatus.NEEDS_REVIEW and raced.order_id is None


def test_a_set_that_fails_is_verified_one_claim_at_a_time(bundles):
    claims = verifiable(3)
    with mock.patch.object(decisions, "_verify_write", wraps=decisions._verify_write) as write:
        write.side_effect = [DatabaseError("deadlock detected"), *([mock.DEFAULT] * 3)]
        result = run()
    assert result.counts["verified"] == 3
    assert [len(call.args[0]) for call in write.call_args_list] == [3, 1, 1, 1]
    assert {c.status for c in Claim.objects.filter(pk__in=[c.pk for c in claims])} == {ClaimStatus.VERIFIED}
    assert JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED).count() == 3
    assert books.books_check() == []


def test_a_correction_verified_in_a_set_supersedes_the_senders_failed_claim(bundles, settings):
    settings.CLAIM_GRACE = 0
    sender = "254722000333"
    old = ClaimFactory(
        sender_msisdn=sender,
        code=code_for(NOW.date()),  # on no till receipt
        claimed_at=NOW - dt.timedelta(minutes=20),
    )
    r = receipt(amount="250")
    fix = ClaimFactory(
        sender_msisdn=sender,
        code=r.code,
        claimed_at=NOW - dt.timedelta(minutes=10),
        message=MessageFactory(
            text=f"sorry correct code is {r.code}", sent_at=NOW - dt.timedelta(minutes=10)
        ),
    )
    others = verifiable(3)
    run()
    old.refresh_from_db()
    fix.refresh_from_db()
    assert fix.status == ClaimStatus.VERIFIED
    assert old.status == ClaimStatus.SUPERSEDED and old.superseded_by_id == fix.pk
    assert all(Claim.objects.get(pk=c.pk).status == ClaimStatus.VERIFIED for c in others)


def _receipt_id(claim):
    from reconciliation.models import TillReceipt

    return TillReceipt.objects.get(code=claim.code).pk
