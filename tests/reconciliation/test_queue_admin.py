"""The agent's queue in the admin: lists, search, detail evidence, decisions and uploads."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from reconciliation.models import Claim, ClaimStatus, DayClose, StatementImport, TillReceipt
from reconciliation.services import decisions
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data"


def url(name, *args):
    return reverse(f"admin:reconciliation_{name}", args=args)


def mismatch_claim():
    r = receipt(amount="199")
    claim = ClaimFactory(code=r.code, sender_msisdn="254700000009")
    claims_reconcile(trigger="test", now=NOW)
    claim.refresh_from_db()
    return claim, r


@pytest.mark.parametrize(
    "name",
    [
        "claim",
        "tillreceipt",
        "statementimport",
        "whatsappmessage",
        "whatsappimport",
        "reconciliationrun",
        "dayclose",
    ],
)
def test_every_changelist_opens_for_finance(client_for, finance, name):
    assert client_for(finance).get(url(f"{name}_changelist")).status_code == 200


def test_queue_is_oldest_first_with_age_badges_and_phone_search(client_for, agent, bundles):
    now = timezone.now()
    old = ClaimFactory(claimed_at=now - dt.timedelta(hours=3), sender_msisdn="254711111111")
    new = ClaimFactory(claimed_at=now - dt.timedelta(minutes=5), sender_msisdn="254722222222")
    client = client_for(agent)
    body = client.get(url("claim_changelist")).content.decode()
    assert body.index(old.code) < body.index(new.code)
    assert "3 h 0 min" in body and "5 min" in body
    found = client.get(url("claim_changelist"), {"q": "0722 222 222"}).content.decode()
    assert new.code in found and old.code not in found
    by_code = client.get(url("claim_changelist"), {"q": new.code.lower()}).content.decode()
    assert new.code in by_code and old.code not in by_code


def test_claim_page_shows_message_explanation_candidates_and_reply(client_for, agent, bundles):
    claim, r = mismatch_claim()
    body = client_for(agent).get(url("claim_change", claim.pk)).content.decode()
    assert "matches no bundle price" in body
    assert "Amount is a bundle price" in body and r.code in body  # plain words, not amount_matches_bundle
    assert 'data-testid="reply-text"' in body


def test_agent_verifies_through_the_form(client_for, agent, bundles):
    claim, r = mismatch_claim()
    client = client_for(agent)
    page = client.get(url("claim_verify", claim.pk))
    assert page.status_code == 200 and r.code in page.content.decode()
    response = client.post(
        url("claim_verify", claim.pk),
        {
            "receipt_code": r.code,
            "amount": "199",
            "bundle": bundles["daily-2gb"].pk,
            "recipient": "0712345678",
        },
    )
    assert response.status_code == 302
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.decided_by == agent


def test_wrong_amount_in_form_shows_error_and_saves_nothing(client_for, agent, bundles):
    claim, r = mismatch_claim()
    response = client_for(agent).post(
        url("claim_verify", claim.pk),
        {
            "receipt_code": r.code,
            "amount": "150",
            "bundle": bundles["daily-2gb"].pk,
            "recipient": "0712345678",
        },
    )
    assert response.status_code == 200 and "is not the receipt amount" in response.content.decode()
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.NEEDS_REVIEW


def test_second_agent_sees_who_verified_first(client_for, agent, finance, bundles):
    claim, r = mismatch_claim()
    decisions.claim_verify(
        claim_id=claim.pk, receipt_code=r.code, amount="199", bundle_id=bundles["daily-2gb"].pk, user=agent
    )
    response = client_for(finance).post(
        url("claim_verify", claim.pk),
        {
            "receipt_code": r.code,
            "amount": "199",
            "bundle": bundles["daily-2gb"].pk,
            "recipient": "0712345678",
        },
        follow=True,
    )
    assert "Only a claim waiting for a decision" in response.content.decode()


def test_reject_with_reason(client_for, agent, bundles):
    claim, _ = mismatch_claim()
    client_for(agent).post(
        url("claim_reject", claim.pk), {"reason": "Paid another shop", "reply_reason": "other_payee"}
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.REJECTED and claim.decision_note == "Paid another shop"


def test_undo_is_finance_only(client_for, agent, finance, bundles):
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code)
    claims_reconcile(trigger="test", now=NOW)
    assert (
        client_for(agent).post(url("claim_undo_verification", claim.pk), {"reason": "x"}).status_code == 403
    )
    client_for(finance).post(url("claim_undo_verification", claim.pk), {"reason": "wrong number"})
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and claim.order is None


def test_export_button_streams_the_contract(client_for, agent, bundles):
    ClaimFactory()
    response = client_for(agent).get(url("claim_export_claims"))
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0] == "sender,code,recipient,status,reason,receipt,amount,bundle"


def test_paste_message_creates_claim_and_opens_it(client_for, agent):
    response = client_for(agent).post(
        url("claim_paste_message"), {"sender": "0712 345 678", "text": "paid UCA1KQ7T4D"}
    )
    claim = Claim.objects.get(code="UCA1KQ7T4D")
    assert response.status_code == 302 and response.url == url("claim_change", claim.pk)


def test_paste_with_bad_phone_shows_error(client_for, agent):
    response = client_for(agent).post(
        url("claim_paste_message"), {"sender": "123", "text": "paid UCA1KQ7T4D"}
    )
    assert response.status_code == 200 and "Kenyan mobile number" in response.content.decode()
    assert not Claim.objects.exists()


def test_upload_chat_export(client_for, agent):
    data = (DATA / "reconciliation" / "chat_march_android.txt").read_bytes()
    response = client_for(agent).post(
        url("claim_upload_chat"),
        {"file": SimpleUploadedFile("chat.txt", data), "business_number": "0782070228"},
    )
    # 8 claims with a code and the unreadable "I have sent the money via mpesa" for a person.
    assert response.status_code == 302 and Claim.objects.count() == 9


def test_statement_upload_previews_then_imports(client_for, finance):
    client = client_for(finance)
    data = (DATA / "reconciliation" / "statement_march.csv").read_bytes()
    response = client.post(
        url("statementimport_upload_statement"), {"file": SimpleUploadedFile("march.csv", data)}
    )
    imp = StatementImport.objects.get()
    assert response.url == url("statementimport_change", imp.pk) and not TillReceipt.objects.exists()
    # Was "New receipts: <strong>3</strong>"; the page now lists the rows and their total.
    assert "To add: <strong>3</strong> receipts (KES 900.00)" in client.get(response.url).content.decode()
    client.post(url("statementimport_import_rows", imp.pk), {"confirmed": "1"})
    assert TillReceipt.objects.count() == 3


def test_broken_statement_upload_lists_row_errors_and_saves_nothing(client_for, finance):
    data = (DATA / "statements" / "bad_amount.csv").read_bytes()
    response = client_for(finance).post(
        url("statementimport_upload_statement"), {"file": SimpleUploadedFile("bad.csv", data)}
    )
    body = response.content.decode()
    assert response.status_code == 200 and "bad row(s)" in body and "Paid In" in body
    assert not StatementImport.objects.exists()


def test_agent_cannot_import_statements(client_for, agent):
    assert client_for(agent).get(url("statementimport_upload_statement")).status_code == 403


def test_till_sms_paste_and_unmatched_filter(client_for, finance):
    client = client_for(finance)
    text = (
        "UCA1S35S7Z Confirmed.on 10/3/26 at 3:57 PMKsh150.00 received from 254721863742 MERCY WAITHAKA. "
        "New Account balance is Ksh440.00. Transaction cost, Ksh0.00."
    )
    client.post(url("tillreceipt_paste_till_sms"), {"text": text})
    assert TillReceipt.objects.get(code="UCA1S35S7Z").payer_name == "MERCY WAITHAKA"
    body = client.get(url("tillreceipt_changelist"), {"matched": "no"}).content.decode()
    assert "UCA1S35S7Z" in body and "unmatched" in body


def test_day_close_page_shows_figures_and_records_sign_off(client_for, finance):
    client = client_for(finance)
    r = receipt(amount="1500")
    body = client.post(url("dayclose_close_a_day"), {"day": NOW.date().isoformat()}).content.decode()
    # A readable table with a link to the receipt, not raw JSON; amounts with thousands separators.
    assert "paid_in_vs_delivered" not in body and '"receipts_not_delivered"' not in body
    assert url("tillreceipt_change", r.pk) in body and "1,500.00" in body
    assert 'data-testid="close-status">1 difference to check<' in body
    client.post(url("dayclose_close_a_day"), {"day": NOW.date().isoformat(), "sign_off": "1"})
    close = DayClose.objects.get(day=NOW.date())
    assert close.closed_by == finance and not close.balanced
    detail = client.get(url("dayclose_change", close.pk)).content.decode()
    assert url("tillreceipt_change", r.pk) in detail and "1 difference to check" in detail
    listing = client.get(url("dayclose_changelist")).content.decode()
    assert "1 difference to check" in listing and "1,500.00 / 1,500.00 / 0.00" in listing


def test_detail_buttons_follow_the_claim_status(client_for, finance, bundles):
    r = receipt(amount="150")
    claim = ClaimFactory(code=r.code)
    client = client_for(finance)
    body = client.get(url("claim_change", claim.pk)).content.decode()
    assert url("claim_verify", claim.pk) in body and url("claim_undo_verification", claim.pk) not in body
    claims_reconcile(trigger="test", now=NOW)
    body = client.get(url("claim_change", claim.pk)).content.decode()
    assert url("claim_verify", claim.pk) not in body and url("claim_undo_verification", claim.pk) in body
