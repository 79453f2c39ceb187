"""A statement's page lists the rows that will be added and those skipped (with why), read against
the receipts as they are now; once imported it shows what was added and offers no import again."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from reconciliation.models import ImportStatus, StatementImport, TillReceipt
from reconciliation.services import receipts as svc
from reconciliation.services.statements import statement_rows

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data"
MARCH = DATA / "reconciliation" / "statement_march.csv"
OVERLAP = DATA / "reconciliation" / "statement_march_overlap.csv"


def url(name, *args):
    return reverse(f"admin:reconciliation_{name}", args=args)


def upload(client, path):
    client.post(
        url("statementimport_upload_statement"), {"file": SimpleUploadedFile(path.name, path.read_bytes())}
    )
    return StatementImport.objects.get(original_name=path.name)


def section(html, key):
    match = re.search(rf'data-testid="rows-{key}".*?</table>', html, re.S)
    assert match, key
    return match.group(0)


def test_overlapping_preview_counts_only_the_receipts_still_new(client_for, finance):
    # The overlap file was previewed before March was imported: its stored counts say 2 new
    # (KES 2,000); the page reads the receipts as they are now and lists the one new row, 1,500.
    client = client_for(finance)
    overlap = upload(client, OVERLAP)
    march = upload(client, MARCH)
    client.post(url("statementimport_import_rows", march.pk), {"confirmed": "1"})
    assert overlap.counts["new"] == 2  # what the upload saw

    page = client.get(url("statementimport_change", overlap.pk)).content.decode()
    to_add, skipped = section(page, "to_add"), section(page, "skipped")
    assert "Rows that will be added: 1, KES 1,500.00" in to_add
    assert "UCA6PL2R8W" in to_add and "1,500.00" in to_add and "2,000" not in page
    known = TillReceipt.objects.get(code="UCA3WQ6N7H")
    assert "UCA3WQ6N7H" in skipped and "Already recorded (statement import)" in skipped
    assert url("tillreceipt_change", known.pk) in skipped
    assert "To add: <strong>1</strong> receipt (KES 1,500.00)" in page
    confirm = client.get(url("statementimport_import_rows", overlap.pk)).content.decode()
    assert "Record 1 new till receipt (KES 1,500.00)?" in confirm and "UCA6PL2R8W" in confirm

    client.post(url("statementimport_import_rows", overlap.pk), {"confirmed": "1"})
    overlap.refresh_from_db()
    assert overlap.status == ImportStatus.DONE and overlap.counts["new_amount"] == "1500.00"
    page = client.get(url("statementimport_change", overlap.pk)).content.decode()
    added = section(page, "added")
    new = TillReceipt.objects.get(code="UCA6PL2R8W")
    assert "Rows this import added: 1, KES 1,500.00" in added and url("tillreceipt_change", new.pk) in added
    assert url("statementimport_import_rows", overlap.pk) not in page  # no "Import these rows" any more
    again = client.get(url("statementimport_import_rows", overlap.pk))
    assert again.status_code == 302 and TillReceipt.objects.count() == 4


def test_skipped_rows_say_why(db):
    imp = svc.statement_import_create(data=MARCH.read_bytes(), filename=MARCH.name)
    sections = statement_rows(imp=imp)
    assert [r["code"] for r in sections["to_add"].rows] == ["UCA1KQ7T4D", "UCA2MX9P3F", "UCA3WQ6N7H"]
    assert sections["to_add"].amount == 900
    whys = {r["code"]: r["why"] for r in sections["skipped"].rows}
    assert whys == {
        "UCA2MX9P3F": "M-Pesa charge",
        "UCA4TT3Y9K": "Not completed (cancelled or failed)",
        "UCA5HV4C6M": "Money out (withdrawal or payment)",
    }
    amounts = {r["code"]: r["amount"] for r in sections["skipped"].rows}
    assert amounts["UCA2MX9P3F"] == Decimal("1.25") and amounts["UCA5HV4C6M"] == Decimal("600.00")


def test_a_long_section_lists_its_first_rows_with_the_full_count_and_sum(monkeypatch):
    from reconciliation.services import statements

    monkeypatch.setattr(statements, "ROWS_SHOWN", 2)
    imp = svc.statement_import_create(data=MARCH.read_bytes(), filename=MARCH.name)
    to_add = statement_rows(imp=imp)["to_add"]
    assert (len(to_add.rows), to_add.count, to_add.amount) == (2, 3, Decimal("900.00"))
