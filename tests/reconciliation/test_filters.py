"""The claims queue's search and the suspense list's filters (reconciliation.filters)."""

import pytest

from reconciliation.filters import claims_search, receipts_by_use, receipts_search
from reconciliation.models import Claim, TillReceipt
from reconciliation.services import decisions

from .factories import ClaimFactory, receipt

pytestmark = pytest.mark.django_db


def test_a_claim_is_found_by_its_code_in_any_grouping_or_a_phone_in_any_form():
    mine = ClaimFactory(code="UC11ABCDEF", sender_msisdn="254712000001", recipient_msisdn="254712000002")
    ClaimFactory(code="UC11ZZZZZ9", sender_msisdn="254712000003")
    everyone = Claim.objects.all()
    for term in ("UC11ABCDEF", "uc11 abc def", "UC1-1AB-CDEF", "0712 000 001", "+254712000002", "UC11A"):
        assert list(claims_search(everyone, term)) == [mine], term
    assert claims_search(everyone, "  ").count() == 2
    assert not claims_search(everyone, "0799 999 999").exists()


def test_receipts_are_found_by_code_and_filtered_by_what_they_paid(agent, bundles):
    used, free = receipt(amount="150"), receipt(amount="199")
    claim = ClaimFactory(code=used.code)
    decisions.claim_verify(claim_id=claim.pk, receipt_code=used.code, amount="150", user=agent)
    everyone = TillReceipt.objects.all()
    assert list(receipts_search(everyone, free.code[:-1].lower())) == [free]
    assert list(receipts_by_use(everyone, "no")) == [free]
    assert list(receipts_by_use(everyone, "yes")) == [used]
    assert receipts_by_use(everyone, None).count() == 2
