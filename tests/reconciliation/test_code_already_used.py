"""A claim whose code already paid another claim links to that claim and order and never verifies."""

import datetime as dt

import pytest
from django.urls import reverse

from reconciliation.models import ClaimReason, ClaimStatus
from reconciliation.services import decisions
from reconciliation.services.errors import VerificationInvalid
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db


@pytest.fixture
def second(bundles):
    r = receipt(amount="150")
    first = ClaimFactory(code=r.code, sender_msisdn="254711000001")
    claims_reconcile(trigger="test", now=NOW)
    first.refresh_from_db()
    assert first.status == ClaimStatus.VERIFIED
    again = ClaimFactory(code=r.code, sender_msisdn="254711000002", claimed_at=NOW + dt.timedelta(minutes=5))
    claims_reconcile(trigger="test", now=NOW + dt.timedelta(minutes=6))
    again.refresh_from_db()
    assert again.reason == ClaimReason.CODE_ALREADY_USED
    return first, again, r


def test_used_code_cannot_be_verified_by_the_rules_or_the_service(second, agent):
    first, again, r = second
    assert not again.can("verify") and again.can("reject") and again.is_open
    with pytest.raises(VerificationInvalid, match="cannot be verified"):
        decisions.claim_verify(claim_id=again.pk, receipt_code=r.code, amount="150", user=agent)
    again.refresh_from_db()
    assert again.status == ClaimStatus.NEEDS_REVIEW and again.order_id is None


def test_page_links_the_first_claim_and_order_and_offers_no_verify(second, client_for, agent):
    first, again, _ = second
    client = client_for(agent)
    page = client.get(reverse("admin:reconciliation_claim_change", args=[again.pk])).content.decode()
    assert 'data-testid="first-use"' in page
    assert reverse("admin:reconciliation_claim_change", args=[first.pk]) in page
    assert reverse("admin:ledger_order_change", args=[first.order_id]) in page
    assert first.order.reference in page
    assert reverse("admin:reconciliation_claim_verify", args=[again.pk]) not in page
    assert reverse("admin:reconciliation_claim_reject", args=[again.pk]) in page
    # Typing the verify address does nothing either.
    response = client.get(reverse("admin:reconciliation_claim_verify", args=[again.pk]), follow=True)
    assert "cannot be verified" in response.content.decode()


def test_first_claim_page_has_no_used_code_banner(second, client_for, agent):
    first, _, _ = second
    page = (
        client_for(agent).get(reverse("admin:reconciliation_claim_change", args=[first.pk])).content.decode()
    )
    assert 'data-testid="first-use"' not in page
