"""The matcher's outcomes, one reason per test, plus verification and idempotency."""

import datetime as dt
from decimal import Decimal

import pytest

from catalog.models import Bundle, BundlePriceChange
from ledger.models import EntryKind, JournalEntry, Order, OrderStatus
from reconciliation.models import ClaimReason, ClaimStatus, TillReceipt
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, code_for, receipt

pytestmark = pytest.mark.django_db


def run():
    return claims_reconcile(trigger="test", now=NOW)


def signals(claim):
    return {s["name"]: s["result"] for s in claim.explanation["signals"]}


def test_exact_code_and_bundle_price_verifies_and_creates_paid_till_order(bundles):
    r = receipt(amount="250")
    claim = ClaimFactory(code=r.code, recipient_msisdn="254711000111")
    run()
    claim.refresh_from_db()
    r.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.reason == ""
    assert claim.bundle == bundles["daily-5gb"]
    order = claim.order
    assert order.status == OrderStatus.PAID and order.channel == "till"
    assert order.price == Decimal("250.00") and order.recipient_msisdn == "254711000111"
    assert r.order == order and claim.receipt == r
    entry = JournalEntry.objects.get(order=order, kind=EntryKind.CLAIM_VERIFIED)
    assert sorted((p.account.key, p.amount) for p in entry.postings.all()) == [
        ("bundles_owed", Decimal("-250.00")),
        ("unallocated_receipts", Decimal("250.00")),
    ]
    assert signals(claim)["code_exact"] == "pass"
    assert signals(claim)["amount_matches_bundle"] == "pass"
    assert "Daily 5GB" in claim.explanation["summary"]


def test_rerunning_changes_nothing(bundles):
    r = receipt(amount="150")
    ClaimFactory(code=r.code)
    run()
    entries, orders = JournalEntry.objects.count(), Order.objects.count()
    second = run()
    assert (JournalEntry.objects.count(), Order.objects.count()) == (entries, orders)
    assert second.counts.get("verified", 0) == 0


def test_amount_matching_no_bundle_is_amount_mismatch(bundles):
    r = receipt(amount="199")
    claim = ClaimFactory(code=r.code)
    run()
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.AMOUNT_MISMATCH)
    assert claim.order is None and claim.suggested_receipt == r


def test_pasted_sms_amount_differing_from_receipt_is_amount_mismatch(bundles):
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code, claimed_amount=Decimal("250"))
    run()
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.AMOUNT_MISMATCH
    assert signals(claim)["sms_amount"] == "fail"


def test_price_in_force_at_payment_time_is_used(bundles):
    bundle = bundles["daily-2gb"]
    # Price was 120 until an hour ago, then raised to 150 (current).
    BundlePriceChange.objects.create(
        bundle=bundle,
        old_price=Decimal("120"),
        new_price=Decimal("150"),
        changed_at=NOW - dt.timedelta(hours=1),
    )
    old = receipt(amount="120", paid_at=NOW - dt.timedelta(hours=3))
    claim = ClaimFactory(code=old.code, claimed_at=NOW - dt.timedelta(hours=2))
    run()
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.bundle == bundle
    assert claim.order.price == Decimal("120.00")


def test_retired_bundle_price_does_not_verify(bundles):
    Bundle.objects.filter(slug="daily-2gb").update(active=False)
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code)
    run()
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.AMOUNT_MISMATCH


def test_two_bundles_at_one_price_is_ambiguous(bundles):
    Bundle.objects.filter(slug="daily-5gb").update(price=Decimal("150"))
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code)
    run()
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.AMBIGUOUS)


def test_second_claim_of_a_used_code_is_flagged_and_first_stands(bundles):
    r = receipt(amount="150")
    first = ClaimFactory(code=r.code, claimed_at=NOW - dt.timedelta(minutes=2))
    later = ClaimFactory(code=r.code, claimed_at=NOW - dt.timedelta(minutes=1))
    run()
    first.refresh_from_db()
    later.refresh_from_db()
    assert first.status == ClaimStatus.VERIFIED
    assert (later.status, later.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.CODE_ALREADY_USED)
    assert later.order is None


def test_claim_for_code_verified_in_an_earlier_run_is_code_already_used(bundles):
    r = receipt(amount="150")
    ClaimFactory(code=r.code)
    run()
    later = ClaimFactory(code=r.code, claimed_at=NOW + dt.timedelta(minutes=3))
    claims_reconcile(trigger="test", now=NOW + dt.timedelta(minutes=4))
    later.refresh_from_db()
    assert later.reason == ClaimReason.CODE_ALREADY_USED


def test_no_receipt_within_grace_stays_pending_then_unknown_code(bundles, settings):
    settings.CLAIM_GRACE = 3600
    claim = ClaimFactory(claimed_at=NOW - dt.timedelta(minutes=30))
    run()
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PENDING
    claims_reconcile(trigger="test", now=NOW + dt.timedelta(hours=1))
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.UNKNOWN_CODE)


def test_receipt_arriving_after_unknown_code_verifies_on_next_run(bundles, settings):
    settings.CLAIM_GRACE = 60
    claim = ClaimFactory(claimed_at=NOW - dt.timedelta(hours=3))
    run()
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.UNKNOWN_CODE
    receipt(code=claim.code, amount="500", paid_at=NOW - dt.timedelta(hours=3, minutes=5))
    run()
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.bundle.slug == "weekly-8-75gb"


def test_code_dated_far_from_message_is_unknown_code_immediately(bundles):
    stale = code_for((NOW - dt.timedelta(days=9)).date())
    claim = ClaimFactory(code=stale)
    run()
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.UNKNOWN_CODE
    assert signals(claim)["code_date_plausible"] == "fail"


def test_code_dated_after_message_is_unknown_code(bundles):
    future = code_for((NOW + dt.timedelta(days=1)).date())
    claim = ClaimFactory(code=future)
    run()
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.UNKNOWN_CODE


def test_one_lookalike_receipt_is_possible_typo_never_verified(bundles):
    r = receipt(code=code_for(NOW.date(), "70KX3SY"), amount="150")
    typed = r.code.replace("0", "O").replace("3S", "35")
    claim = ClaimFactory(code=typed)
    run()
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.POSSIBLE_TYPO)
    assert claim.suggested_receipt == r
    assert claim.order is None and TillReceipt.objects.get(pk=r.pk).order is None


def test_several_lookalike_receipts_is_ambiguous(bundles):
    receipt(code=code_for(NOW.date(), "70KX3SY"), amount="150")
    receipt(code=code_for(NOW.date(), "7OKX35Y"), amount="150")
    claim = ClaimFactory(code=code_for(NOW.date(), "7OKX3SY"))
    run()
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.AMBIGUOUS and claim.suggested_receipt is None


def test_claim_without_recipient_is_ambiguous(bundles):
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code, sender_msisdn="", recipient_msisdn="")
    run()
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.AMBIGUOUS
    assert signals(claim)["recipient"] == "fail"


def test_verified_and_rejected_claims_are_never_touched(bundles):
    r = receipt(amount="150")
    rejected = ClaimFactory(code=r.code, status=ClaimStatus.REJECTED, decision_note="fraud")
    run()
    rejected.refresh_from_db()
    assert rejected.status == ClaimStatus.REJECTED and rejected.order is None


def test_batches_cover_all_claims(bundles):
    codes = [receipt(amount="150").code for _ in range(5)]
    for code in codes:
        ClaimFactory(code=code)
    claims_reconcile(trigger="test", now=NOW, batch=2)
    assert Order.objects.filter(mpesa_receipt__in=codes, status=OrderStatus.PAID).count() == 5


def test_receipt_nobody_claimed_records_no_run(bundles):
    from reconciliation.models import ReconciliationRun

    r = receipt(amount="150")
    claims_reconcile(trigger="receipt", codes=[r.code], now=NOW)
    assert not ReconciliationRun.objects.exists()


def test_receipt_arriving_triggers_matching_of_its_claim(bundles, django_capture_on_commit_callbacks):
    claim = ClaimFactory(claimed_at=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        receipt(code=claim.code, amount="150", paid_at=NOW - dt.timedelta(minutes=3))
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED
