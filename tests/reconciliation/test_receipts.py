"""Till receipts from pasted merchant SMS, and the books invariant they keep."""

from decimal import Decimal

import pytest
from django.db.models import Sum

from ledger.models import EntryKind, JournalEntry, Posting
from reconciliation.models import ReceiptSource, TillReceipt
from reconciliation.services.errors import ImportRefused
from reconciliation.services.matcher import claims_reconcile
from reconciliation.services.receipts import till_sms_import

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db

TWO_SMS = (
    "UCA1S35S7Z Confirmed.on 10/3/26 at 3:57 PMKsh150.00 received from 254721863742 MERCY MUGOIRI WAITHAKA. "
    "New Account balance is Ksh440.00. Transaction cost, Ksh0.00.\n"
    "UCA9S2XEPH Confirmed.on 10/3/26 at 3:54 PMKsh250.00 received from 254797847747 james kamau. "
    "New Account balance is Ksh400.00. Transaction cost, Ksh0.00."
)


def test_pasted_till_sms_become_booked_receipts():
    counts = till_sms_import(text=TWO_SMS)
    assert (counts["found"], counts["new"], counts["known"]) == (2, 2, 0)
    r = TillReceipt.objects.get(code="UCA1S35S7Z")
    assert r.amount == Decimal("150.00") and r.source == ReceiptSource.SMS
    assert r.payer_masked == "254721863742" and r.payer_name == "MERCY MUGOIRI WAITHAKA"
    assert JournalEntry.objects.filter(kind=EntryKind.TILL_RECEIPT).count() == 2


def test_pasting_again_adds_nothing():
    till_sms_import(text=TWO_SMS)
    counts = till_sms_import(text=TWO_SMS)
    assert (counts["new"], counts["known"]) == (0, 2)
    assert TillReceipt.objects.count() == 2 and JournalEntry.objects.count() == 2


def test_customer_side_sms_is_not_a_till_receipt():
    customer = (
        "UCA2YADR1X Confirmed. Ksh150.00 paid to TILLBOOK DATA. on 10/3/26 at 7:51 PM.New M-PESA balance is "
        "Ksh1,324.13. Transaction cost, Ksh0.00."
    )
    with pytest.raises(ImportRefused):
        till_sms_import(text=customer)
    assert not TillReceipt.objects.exists()


def test_unallocated_balance_equals_unmatched_receipts(bundles):
    used = receipt(amount="150")
    receipt(amount="199")
    receipt(amount="500")
    ClaimFactory(code=used.code)
    claims_reconcile(trigger="test", now=NOW)
    unallocated = Posting.objects.filter(account__key="unallocated_receipts").aggregate(s=Sum("amount"))["s"]
    unmatched = TillReceipt.objects.unmatched().aggregate(s=Sum("amount"))["s"]
    assert -unallocated == unmatched == Decimal("699.00")
