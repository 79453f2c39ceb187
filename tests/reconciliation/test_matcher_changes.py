"""Scheduled matcher runs examine only the claims whose evidence changed since the previous run;
every MATCHER_FULL_RUN_EVERY seconds, and on any other trigger, a run examines every open claim.
An idle run (nothing new) examines nothing, and each kind of new evidence wakes its claim."""

import datetime as dt

import pytest
from django.db.models import F
from django.utils import timezone

from catalog.services import bundle_save
from ledger.models import Order
from reconciliation.models import Claim, ClaimReason, ClaimStatus, ReconciliationRun, TillReceipt
from reconciliation.services import matcher
from reconciliation.services.matcher import claims_reconcile

from .factories import ClaimFactory, code_for, receipt

pytestmark = pytest.mark.django_db


def scheduled(now=None):
    return claims_reconcile(trigger="schedule", now=now)


def later(minutes=10):
    """Let time pass: every run, claim, receipt and order so far happened `minutes` earlier (update()
    calls, so auto_now does not move the times). A change older than the previous run plus
    CHANGES_OVERLAP is history the next run has already seen."""
    back = dt.timedelta(minutes=minutes)
    ReconciliationRun.objects.update(started_at=F("started_at") - back)
    Claim.objects.update(updated_at=F("updated_at") - back)
    TillReceipt.objects.update(created_at=F("created_at") - back)
    Order.objects.update(updated_at=F("updated_at") - back)


@pytest.fixture
def waiting(bundles):
    """Three pending claims (no receipt yet), just made, after one full scheduled run."""
    now = timezone.now()
    claims = [ClaimFactory(claimed_at=now - dt.timedelta(minutes=5)) for _ in range(3)]
    later()
    first = scheduled()
    later()
    assert first.scope == "all" and first.counts["examined"] == 3
    # The next run looks once more at what the first one wrote (explanations), then nothing.
    assert scheduled().counts["examined"] == 3
    later()
    return claims


def test_an_idle_scheduled_run_examines_nothing(waiting):
    run = scheduled()
    assert run.scope == "changed"
    assert run.counts.get("examined", 0) == 0
    assert all(c.status == ClaimStatus.PENDING for c in waiting)


def test_a_new_receipt_wakes_only_its_claim_and_verifies_it(waiting):
    claim = waiting[1]
    receipt(code=claim.code, amount="150", paid_at=claim.claimed_at - dt.timedelta(minutes=2))
    run = scheduled()
    assert run.scope == "changed" and run.counts["examined"] == 1 and run.counts["verified"] == 1
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED


def test_a_look_alike_receipt_wakes_the_claim_with_the_slip(bundles):
    now = timezone.now()
    real, slip = code_for(timezone.localdate(), "7KQ4TW0"), code_for(timezone.localdate(), "7KQ4TWO")
    claim = ClaimFactory(code=slip, claimed_at=now - dt.timedelta(minutes=5))
    later()
    scheduled()
    later()
    scheduled()
    later()
    receipt(code=real, amount="150", paid_at=now - dt.timedelta(minutes=7))
    run = scheduled()
    claim.refresh_from_db()
    assert run.scope == "changed" and run.counts["examined"] == 1
    assert claim.suggested_receipt is not None and claim.suggested_receipt.code == real


def test_the_grace_deadline_passing_wakes_the_claim(waiting, settings):
    later = timezone.now() + dt.timedelta(seconds=settings.CLAIM_GRACE + 60)
    run = scheduled(now=later)
    assert run.scope == "changed" and run.counts["examined"] == 3
    for claim in waiting:
        claim.refresh_from_db()
        assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.UNKNOWN_CODE)


def test_an_edited_claim_is_examined_again(waiting):
    claim = waiting[0]
    claim.recipient_msisdn = "254722000111"
    claim.save()
    run = scheduled()
    assert run.counts["examined"] == 1


def test_a_price_change_wakes_every_claim(waiting, bundles):
    bundle = bundles["daily-2gb"]
    bundle.price += 10
    bundle_save(bundle=bundle, changed_by=None)  # a price moved: every claim's bundle may change
    run = scheduled()
    assert run.scope == "all" and run.counts["examined"] == 3


def test_other_triggers_and_an_old_full_run_examine_every_claim(waiting, monkeypatch):
    assert claims_reconcile(trigger="manual").counts["examined"] == 3
    monkeypatch.setattr(matcher, "FULL_RUN_EVERY", dt.timedelta(0))
    run = scheduled()
    assert run.scope == "all" and run.counts["examined"] == 3
