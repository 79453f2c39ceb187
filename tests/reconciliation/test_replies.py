"""The reply an agent sends: polite per reject reason, signed, and one click to WhatsApp."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from console.kernel.phones import whatsapp_link
from reconciliation.models import ClaimStatus
from reconciliation.services import decisions, replies

from .factories import ClaimFactory

pytestmark = pytest.mark.django_db
STAFF_NOTE = "Looks like a fake SMS, third one from this number"


def test_every_reject_reason_has_a_polite_reply():
    assert {key for key, _ in replies.REJECT_REASONS} == set(replies.REJECT_REPLIES)


@pytest.mark.parametrize("key", [key for key, _ in replies.REJECT_REASONS])
def test_reject_reply_is_the_reasons_sentence_never_the_staff_note(key, agent, settings):
    settings.SHOP_NAME = "Mama Data"
    claim = ClaimFactory()
    claim = decisions.claim_reject(claim_id=claim.pk, reason=STAFF_NOTE, reply_reason=key, user=agent)
    reply = decisions.whatsapp_reply(claim)
    assert claim.decision_note == STAFF_NOTE  # kept for staff
    assert STAFF_NOTE not in reply and "fake" not in reply
    assert reply.startswith("Sorry") and claim.code in reply and reply.endswith("- Mama Data")
    assert replies.REJECT_REPLIES[key].split("{")[0] in reply


def test_reject_form_picks_a_reason_and_the_note_is_optional(client_for, agent):
    claim = ClaimFactory()
    client = client_for(agent)
    form = client.get(reverse("admin:reconciliation_claim_reject", args=[claim.pk])).content.decode()
    assert "No such payment reached our till" in form
    client.post(
        reverse("admin:reconciliation_claim_reject", args=[claim.pk]), {"reply_reason": "other_payee"}
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.REJECTED
    assert claim.decision_note == "Paid to another till or business"
    page = client.get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    assert "was not made to our till" in page


def test_other_needs_a_note(client_for, agent):
    claim = ClaimFactory()
    response = client_for(agent).post(
        reverse("admin:reconciliation_claim_reject", args=[claim.pk]), {"reply_reason": "other"}
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PENDING and "Say why in the note." in response.content.decode()


def test_open_in_whatsapp_link_carries_the_reply_to_the_sender(client_for, agent):
    claim = ClaimFactory(sender_msisdn="254711222333")
    page = (
        client_for(agent).get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    )
    link = whatsapp_link(claim.sender_msisdn, decisions.whatsapp_reply(claim))
    url = urlparse(link)
    assert url.netloc == "wa.me" and url.path == "/254711222333"
    assert parse_qs(url.query)["text"] == [decisions.whatsapp_reply(claim)]
    assert 'data-testid="open-whatsapp"' in page and "https://wa.me/254711222333?text=" in page
    assert "Copy reply" in page


def test_no_whatsapp_link_without_a_number(client_for, agent):
    claim = ClaimFactory(sender_msisdn="")
    page = (
        client_for(agent).get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    )
    assert 'data-testid="open-whatsapp"' not in page and "Copy reply" in page
    assert whatsapp_link("", "hi") == "" and whatsapp_link("Wanjiru", "hi") == ""
