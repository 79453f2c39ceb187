"""The claims export contract: exact columns, E.164 phones, codes and amounts."""

import csv
from decimal import Decimal

import pytest
from django.core.management import call_command

from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db


def test_export_has_exact_columns_and_one_row_per_claim(bundles, tmp_path):
    r = receipt(amount="150")
    ClaimFactory(code=r.code, sender_msisdn="254700000001", recipient_msisdn="254711000111")
    mismatch = receipt(amount="199")
    ClaimFactory(code=mismatch.code, sender_msisdn="254700000002", claimed_amount=Decimal("199"))
    pending = ClaimFactory(sender_msisdn="254700000003", claimed_amount=Decimal("250"))
    claims_reconcile(trigger="test", now=NOW)
    path = tmp_path / "claims.csv"
    call_command("export_claims", str(path))
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["sender", "code", "recipient", "status", "reason", "receipt", "amount", "bundle"]
    by_sender = {row[0]: row for row in rows[1:]}
    assert len(rows) == 4
    assert by_sender["254700000001"] == [
        "254700000001",
        r.code,
        "254711000111",
        "verified",
        "",
        r.code,
        "150.00",
        "Daily 2GB",
    ]
    assert by_sender["254700000002"][3:7] == ["needs_review", "amount_mismatch", mismatch.code, "199.00"]
    assert by_sender["254700000003"][1:] == [pending.code, "254712345678", "pending", "", "", "250.00", ""]
