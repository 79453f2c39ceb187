"""One phone format for staff (0712 345 678) on every page; search takes any format."""

import pytest
from django.urls import reverse

from console.kernel.phones import phone_display, phone_search_term
from tests.ledger.factories import OrderFactory

from .factories import ClaimFactory, MessageFactory, receipt

pytestmark = pytest.mark.django_db
FORMS = ["0712345678", "0712 345 678", "+254712345678", "254712345678"]


def test_kernel_display_and_search_term():
    assert phone_display("254712345678") == "0712 345 678"
    assert phone_display("2547****678") == "07****678"
    assert phone_display("") == "—"
    assert {phone_search_term(f) for f in FORMS} == {"254712345678"}
    assert phone_search_term("UCA1KQ7T4D") == "UCA1KQ7T4D"


def test_claims_list_and_page_show_local_numbers(client_for, agent):
    claim = ClaimFactory(sender_msisdn="254711222333", recipient_msisdn="254712345600")
    client = client_for(agent)
    listed = client.get(reverse("admin:reconciliation_claim_changelist")).content.decode()
    page = client.get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    for body in (listed, page):
        assert "0711 222 333" in body and "0712 345 600" in body
    assert ">254711222333<" not in page and "0712345600" not in page


@pytest.mark.parametrize("term", FORMS)
def test_claims_search_any_format(client_for, agent, term):
    mine = ClaimFactory(sender_msisdn="254712345678")
    other = ClaimFactory(sender_msisdn="254733000222", recipient_msisdn="254733000222")
    response = client_for(agent).get(reverse("admin:reconciliation_claim_changelist"), {"q": term})
    listed = [c.pk for c in response.context["cl"].result_list]
    assert mine.pk in listed and other.pk not in listed


def test_messages_list_and_page_show_local_numbers(client_for, agent):
    message = MessageFactory(sender_msisdn="254711222333", sender_label="Wanjiru")
    client = client_for(agent)
    listed = client.get(reverse("admin:reconciliation_whatsappmessage_changelist")).content.decode()
    page = client.get(
        reverse("admin:reconciliation_whatsappmessage_change", args=[message.pk])
    ).content.decode()
    assert "0711 222 333" in listed and "Wanjiru" in listed and "254711222333<" not in listed
    assert "0711 222 333" in page


@pytest.mark.parametrize("term", FORMS)
def test_messages_search_any_format(client_for, agent, term):
    mine = MessageFactory(sender_msisdn="254712345678")
    other = MessageFactory(sender_msisdn="254733000222")
    response = client_for(agent).get(reverse("admin:reconciliation_whatsappmessage_changelist"), {"q": term})
    listed = [m.pk for m in response.context["cl"].result_list]
    assert mine.pk in listed and other.pk not in listed


def test_receipts_show_the_masked_payer_in_the_local_form(client_for, finance):
    r = receipt(amount="150")  # payer_masked 2547****678
    client = client_for(finance)
    listed = client.get(reverse("admin:reconciliation_tillreceipt_changelist")).content.decode()
    page = client.get(reverse("admin:reconciliation_tillreceipt_change", args=[r.pk])).content.decode()
    assert "07****678" in listed and "07****678" in page
    assert "2547****678" not in listed  # (the page's raw record keeps what M-Pesa sent, verbatim)


def test_order_page_and_customer_page_show_local_numbers(client_for, agent):
    order = OrderFactory(payer_msisdn="254711222333", recipient_msisdn="254712345600")
    ClaimFactory(sender_msisdn="254711222333", recipient_msisdn="254712345600")
    client = client_for(agent)
    page = client.get(reverse("admin:ledger_order_change", args=[order.pk])).content.decode()
    assert "0711 222 333" in page and "0712 345 600" in page
    customer = client.get(reverse("console_customer", args=["254711222333"]))
    body = customer.content.decode()
    assert customer.status_code == 200
    assert "Customer 0711 222 333" in body and "for 0712 345 600" in body


@pytest.mark.parametrize("term", FORMS)
def test_find_anything_takes_any_format_and_shows_local_numbers(client_for, agent, term):
    order = OrderFactory(payer_msisdn="254712345678", recipient_msisdn="254712345678")
    claim = ClaimFactory(sender_msisdn="254712345678")
    body = client_for(agent).get(reverse("console_find"), {"q": term}).content.decode()
    assert order.reference in body and claim.code in body
    assert "open the timeline of 0712 345 678" in body
    assert ">254712345678<" not in body


def test_chat_import_page_shows_our_number_in_the_local_form(client_for, agent):
    from reconciliation.models import WhatsAppImport

    imp = WhatsAppImport.objects.create(
        original_name="chat.txt", sha256="0" * 64, business_number="254782070228"
    )
    page = client_for(agent).get(reverse("admin:reconciliation_whatsappimport_change", args=[imp.pk]))
    assert "0782 070 228" in page.content.decode()
