"""console.kernel.rows.rows_update writes each row's own values, of every type a claim holds, on
SQLite and PostgreSQL: text with quotes and percent signs, JSON, NULLs, times and foreign keys."""

import datetime as dt

import pytest

from console.kernel.rows import rows_update
from reconciliation.models import Claim, ClaimStatus

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_values_of_every_type(bundles):
    claims = [ClaimFactory() for _ in range(3)]
    r = receipt(amount="250")
    untouched = ClaimFactory()
    claims[0].decision_note = "it's 100% O'Brien; -- DROP TABLE x"
    claims[0].explanation = {"summary": "quote ' and %s", "signals": [{"name": "a", "result": "pass"}]}
    claims[0].suggested_receipt = r
    claims[0].decided_at = NOW + dt.timedelta(minutes=7)
    claims[1].decision_note = ""
    claims[1].explanation = {}
    claims[1].suggested_receipt = None
    claims[1].decided_at = None
    claims[2].decision_note = "ndio hii ✓"
    claims[2].explanation = {"n": 3}
    claims[2].suggested_receipt = r
    claims[2].decided_at = NOW
    for claim in claims:
        claim.status = ClaimStatus.NEEDS_REVIEW
    fields = ["status", "decision_note", "explanation", "suggested_receipt", "decided_at"]
    assert rows_update(claims, fields) == 3
    assert rows_update([], fields) == 0
    for claim in claims:
        saved = Claim.objects.get(pk=claim.pk)
        assert [getattr(saved, f) for f in fields] == [getattr(claim, f) for f in fields]
    untouched.refresh_from_db()
    assert untouched.status == ClaimStatus.PENDING and untouched.decision_note == ""
