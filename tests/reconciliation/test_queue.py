"""The agent's decisions: verify from review, reject, undo, races, reply text, audit."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from console.models import AuditEvent
from ledger.models import EntryKind, JournalEntry, OrderStatus
from reconciliation.models import Claim, ClaimReason, ClaimStatus
from reconciliation.services import decisions
from reconciliation.services.errors import (
    ClaimAlreadyDecided,
    ClaimNotOpen,
    ReceiptAlreadyUsed,
    ReceiptNotFound,
    VerificationInvalid,
)
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db


def review_claim(amount="199", **kw):
    r = receipt(amount=amount)
    claim = ClaimFactory(code=r.code, **kw)
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    return claim, r


def test_agent_verifies_amount_mismatch_by_picking_bundle_and_retyping_amount(bundles, agent):
    claim, r = review_claim()
    assert claim.reason == ClaimReason.AMOUNT_MISMATCH
    claim = decisions.claim_verify(
        claim_id=claim.pk, receipt_code=r.code, amount="199", bundle_id=bundles["daily-2gb"].pk, user=agent
    )
    assert claim.status == ClaimStatus.VERIFIED and claim.decided_by == agent
    # The order costs the bundle's price; the other 49 of the receipt stays unallocated.
    assert claim.order.price == Decimal("150.00") and claim.order.bundle == bundles["daily-2gb"]
    assert JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED, order=claim.order).exists()
    event = AuditEvent.objects.get(action="claim.verified")
    assert event.before["status"] == "needs_review" and event.after["status"] == "verified"
    assert event.actor == agent


def test_wrong_retyped_amount_is_refused_and_nothing_changes(bundles, agent):
    claim, r = review_claim()
    with pytest.raises(VerificationInvalid):
        decisions.claim_verify(claim_id=claim.pk, receipt_code=r.code, amount="190", user=agent, bundle_id=1)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and claim.order is None


def test_bundle_must_be_picked_when_the_amount_fits_none(bundles, agent):
    claim, r = review_claim()
    with pytest.raises(VerificationInvalid, match="Pick the bundle"):
        decisions.claim_verify(claim_id=claim.pk, receipt_code=r.code, amount="199", user=agent)


def test_possible_typo_verified_against_suggested_receipt(bundles, agent):
    from .factories import code_for

    r = receipt(code=code_for(NOW.date(), "70KX3SY"), amount="150")
    claim = ClaimFactory(code=r.code.replace("0", "O"))
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.POSSIBLE_TYPO
    claim = decisions.claim_verify(claim_id=claim.pk, receipt_code=r.code, amount="150", user=agent)
    assert claim.receipt == r and claim.bundle == bundles["daily-2gb"]


def test_unknown_receipt_and_used_receipt_are_refused(bundles, agent):
    claim, r = review_claim()
    with pytest.raises(ReceiptNotFound):
        decisions.claim_verify(claim_id=claim.pk, receipt_code="UCA0000000", amount="199", user=agent)
    used = receipt(amount="150")
    ClaimFactory(code=used.code)
    claims_reconcile(trigger="test", now=NOW)
    with pytest.raises(ReceiptAlreadyUsed):
        decisions.claim_verify(claim_id=claim.pk, receipt_code=used.code, amount="150", user=agent)


def test_second_agent_gets_already_verified_message(bundles, agent, finance):
    claim, r = review_claim()
    decisions.claim_verify(
        claim_id=claim.pk, receipt_code=r.code, amount="199", bundle_id=bundles["daily-2gb"].pk, user=agent
    )
    with pytest.raises(ClaimAlreadyDecided, match=r"This claim was already verified by agent at \d\d:\d\d"):
        decisions.claim_verify(
            claim_id=claim.pk, receipt_code=r.code, amount="199", bundle_id=1, user=finance
        )


def test_reject_needs_a_reason_and_is_audited(bundles, agent):
    claim, _ = review_claim()
    with pytest.raises(VerificationInvalid):
        decisions.claim_reject(claim_id=claim.pk, reason=" ", user=agent)
    claim = decisions.claim_reject(claim_id=claim.pk, reason="Paid another shop", user=agent)
    assert claim.status == ClaimStatus.REJECTED and claim.decision_note == "Paid another shop"
    assert AuditEvent.objects.get(action="claim.rejected").reason == "Paid another shop"
    with pytest.raises(ClaimAlreadyDecided, match="already rejected by agent"):
        decisions.claim_reject(claim_id=claim.pk, reason="again", user=agent)


def test_undo_cancels_order_unlinks_receipt_and_reverses_the_entry(bundles, finance):
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code)
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    order = claim.order
    claim = decisions.claim_verification_undo(claim_id=claim.pk, reason="Wrong number loaded", user=finance)
    order.refresh_from_db()
    r.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and "Wrong number loaded" in order.status_reason
    assert r.order is None and claim.order is None and claim.status == ClaimStatus.NEEDS_REVIEW
    verified = JournalEntry.objects.get(kind=EntryKind.CLAIM_VERIFIED, order=order)
    reversal = JournalEntry.objects.get(reverses=verified)
    assert sum(p.amount for p in reversal.postings.all()) == 0
    assert AuditEvent.objects.filter(action="claim.verification_undone").exists()
    # The receipt is back in suspense and can pay a corrected order.
    claim = decisions.claim_verify(claim_id=claim.pk, receipt_code=r.code, amount="150", user=finance)
    assert claim.status == ClaimStatus.VERIFIED


def test_undo_of_unverified_claim_is_refused(bundles, finance):
    claim, _ = review_claim()
    with pytest.raises(ClaimNotOpen):
        decisions.claim_verification_undo(claim_id=claim.pk, reason="x", user=finance)


def test_reply_text_names_bundle_number_and_order(bundles):
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code, recipient_msisdn="254711000111")
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    reply = decisions.whatsapp_reply(claim)
    assert (
        r.code in reply
        and "Daily 2GB" in reply
        and "0711 000 111" in reply
        and claim.order.reference in reply
    )


# ---------------------------------------------------------------------------------------------
# Real concurrency (PostgreSQL only)
# ---------------------------------------------------------------------------------------------
def _in_threads(*targets):
    results, errors = [], []
    barrier = threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            try:
                barrier.wait()
                results.append(fn())
            except Exception as exc:  # collected for the assertions
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_agents_verifying_one_claim_one_wins(bundles, agent, finance):
    claim, r = review_claim()
    bundle_id = bundles["daily-2gb"].pk

    def by(user):
        return lambda: decisions.claim_verify(
            claim_id=claim.pk, receipt_code=r.code, amount="199", bundle_id=bundle_id, user=user
        )

    results, errors = _in_threads(by(agent), by(finance))
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], ClaimAlreadyDecided) and "already verified by" in errors[0].message
    assert JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED).count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_claims_of_one_code_racing_verify_once(bundles):
    r = receipt(amount="150")
    a = ClaimFactory(code=r.code)
    b = ClaimFactory(code=r.code)
    from reconciliation.services.matcher import claims_reconcile as run

    _, errors = _in_threads(
        lambda: run(trigger="a", codes=[r.code], now=NOW), lambda: run(trigger="b", codes=[r.code], now=NOW)
    )
    assert errors == []
    statuses = sorted(Claim.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", "reason"))
    assert statuses == [("needs_review", ClaimReason.CODE_ALREADY_USED), ("verified", "")]
    assert JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED).count() == 1
