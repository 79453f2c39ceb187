"""Order, STK request and callback inbox admin: lists, search, actions and who may press what."""

import json
from decimal import Decimal

import pytest

from console.models import AuditEvent
from ledger import services
from ledger.models import CallbackLog, CallbackOutcome, JournalEntry, Order, OrderStatus, StkRequest
from tests.ledger.factories import (  # noqa: F401
    BundleFactory,
    OrderFactory,
    StkRequestFactory,
    daraja_callback_body,
    ledger_settings,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
CHANGELIST = "/admin/ledger/order/"


def detail(order, action=""):
    return f"/admin/ledger/order/{order.pk}/" + (f"{action}/" if action else "change/")


# ---- lists and search -------------------------------------------------------------------------
def test_changelist_shows_orders_with_local_phones_and_status(client_for, agent):
    order = OrderFactory(status=OrderStatus.PAID, mpesa_receipt="SAE3YULR0Y", payer_msisdn="254712345678")
    resp = client_for(agent).get(CHANGELIST)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert order.reference in html and "0712 345 678" in html and "SAE3YULR0Y" in html and "150.00" in html


@pytest.mark.parametrize("term", ["0712 345 678", "+254712345678", "254712345678", "712345678"])
def test_search_by_phone_in_any_form(client_for, agent, term):
    mine = OrderFactory(recipient_msisdn="254712345678", payer_msisdn="254722000111")
    other = OrderFactory(payer_msisdn="254733000222", recipient_msisdn="254733000222")
    resp = client_for(agent).get(CHANGELIST, {"q": term})
    html = resp.content.decode()
    assert mine.reference in html and other.reference not in html


def test_search_by_reference_and_receipt_case_insensitively(client_for, agent):
    order = OrderFactory(status=OrderStatus.PAID, mpesa_receipt="SAE3YULR0Y")
    other = OrderFactory()
    c = client_for(agent)
    assert order.reference in c.get(CHANGELIST, {"q": "sae3yulr0y"}).content.decode()
    html = c.get(CHANGELIST, {"q": order.reference.lower()}).content.decode()
    assert order.reference in html and other.reference not in html


def test_search_with_a_nul_character_is_not_a_500(client_for, agent):
    assert client_for(agent).get(CHANGELIST, {"q": "TXN\x00"}).status_code == 200


def test_filters_and_detail_with_stk_inline(client_for, agent):
    stk = StkRequestFactory(raw_response={"ResponseCode": "0", "CustomerMessage": "Success"})
    c = client_for(agent)
    assert c.get(CHANGELIST, {"status": "pending_payment", "channel": "stk"}).status_code == 200
    html = c.get(detail(stk.order)).content.decode()
    assert stk.checkout_request_id in html
    assert "&quot;CustomerMessage&quot;: &quot;Success&quot;" in html  # pretty JSON


def test_nobody_adds_or_deletes_orders(client_for, superuser):
    order = OrderFactory()
    c = client_for(superuser)
    assert c.get("/admin/ledger/order/add/").status_code == 403
    assert c.post(f"/admin/ledger/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_manager_cannot_see_orders(client_for, manager):
    assert client_for(manager).get(CHANGELIST).status_code == 403


# ---- New STK push -----------------------------------------------------------------------------
def test_agent_sends_an_stk_push_from_the_admin(client_for, agent):
    bundle = BundleFactory()
    c = client_for(agent)
    assert c.get(CHANGELIST + "stk-push/").status_code == 200
    resp = c.post(
        CHANGELIST + "stk-push/", {"bundle": bundle.pk, "phone_number": "0712 345 678", "recipient_phone": ""}
    )
    order = Order.objects.get()
    assert resp.status_code == 302 and resp.url == detail(order)
    assert order.price == bundle.price and order.created_by == agent
    assert order.payer_msisdn == order.recipient_msisdn == "254712345678"
    assert StkRequest.objects.get(order=order).created_by == agent


def test_an_unanswered_send_warns_the_agent_not_to_send_again(client_for, agent, settings):
    """The gateway timed out: the prompt may still reach the phone, so the agent is told to wait."""
    from unittest import mock

    from ledger.gateways import GatewayUnavailable, SimulatorGateway

    bundle = BundleFactory()
    c = client_for(agent)
    timeout = GatewayUnavailable("Daraja did not answer in time", ambiguous=True)
    with mock.patch.object(SimulatorGateway, "initiate_stk", side_effect=timeout):
        resp = c.post(
            CHANGELIST + "stk-push/",
            {"bundle": bundle.pk, "phone_number": "0712 345 678", "recipient_phone": ""},
            follow=True,
        )
    html = resp.content.decode()
    assert "may still reach the phone" in html and f"{settings.STK_PROMPT_LIFETIME} s" in html
    order = Order.objects.get()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert services.order_retry_allowed(order)[0] is False


def test_stk_push_form_rejects_a_bad_phone_and_saves_nothing(client_for, agent):
    bundle = BundleFactory()
    resp = client_for(agent).post(
        CHANGELIST + "stk-push/", {"bundle": bundle.pk, "phone_number": "0201234567"}
    )
    assert resp.status_code == 200
    assert "Kenyan mobile number" in resp.content.decode()
    assert Order.objects.count() == 0


@pytest.mark.parametrize("user", ["manager", "finance"])
def test_only_roles_with_send_stk_may_push(client_for, request, user):
    bundle = BundleFactory()
    c = client_for(request.getfixturevalue(user))
    resp = c.post(CHANGELIST + "stk-push/", {"bundle": bundle.pk, "phone_number": "0712345678"})
    assert resp.status_code == 403
    assert Order.objects.count() == 0


# ---- retry / cancel ---------------------------------------------------------------------------
def test_retry_asks_then_sends_a_new_prompt(client_for, agent):
    stk = StkRequestFactory(order__status=OrderStatus.FAILED, status="failed")
    c = client_for(agent)
    assert "Send a new M-Pesa prompt" in c.get(detail(stk.order, "retry")).content.decode()
    assert StkRequest.objects.count() == 1  # a GET only asks
    c.post(detail(stk.order, "retry"), {"confirmed": "1"})
    assert StkRequest.objects.filter(order=stk.order).count() == 2
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PENDING_PAYMENT


def test_retry_refuses_a_paid_order(client_for, agent):
    order = OrderFactory(status=OrderStatus.PAID)
    resp = client_for(agent).post(detail(order, "retry"), {"confirmed": "1"}, follow=True)
    assert "Only a failed or expired order" in resp.content.decode()
    assert StkRequest.objects.count() == 0


def test_cancel_with_confirmation(client_for, agent):
    order = OrderFactory()
    c = client_for(agent)
    assert c.get(detail(order, "cancel")).status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    c.post(detail(order, "cancel"), {"confirmed": "1", "reason": "customer asked"})
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and order.status_reason == "customer asked"


def test_manager_cannot_cancel(client_for, manager):
    order = OrderFactory()
    assert client_for(manager).post(detail(order, "cancel"), {"confirmed": "1"}).status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


# ---- mark delivered ---------------------------------------------------------------------------
def test_mark_delivered_confirms_then_shows_the_whatsapp_reply(client_for, agent):
    order = OrderFactory(status=OrderStatus.PAID, mpesa_receipt="SAE3YULR0Y", amount_paid=Decimal("150"))
    c = client_for(agent)
    assert "Have you loaded the bundle" in c.get(detail(order, "deliver")).content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    resp = c.post(detail(order, "deliver"), {"confirmed": "1"})
    assert (
        "Your 2GB bundle for 0712 345 678 is now active. Receipt SAE3YULR0Y. - Tillbook Data Bundles"
        in resp.content.decode()
    )
    assert 'data-testid="copy-reply"' in resp.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    # Clicking again (a second tab) does not deliver or book twice.
    c.post(detail(order, "deliver"), {"confirmed": "1"})
    assert JournalEntry.objects.filter(kind="delivery").count() == 1


def test_bulk_mark_delivered_skips_unpaid_orders(client_for, agent):
    paid = OrderFactory(status=OrderStatus.PAID, mpesa_receipt="SAE3YULR01")
    pending = OrderFactory()
    c = client_for(agent)
    data = {"action": "mark_delivered_selected", "_selected_action": [paid.pk, pending.pk]}
    confirm = c.post(CHANGELIST, data)
    assert "Have you loaded the bundle for 1 paid order(s)?" in confirm.content.decode()
    resp = c.post(CHANGELIST, {**data, "confirmed": "1"})
    html = resp.content.decode()
    assert paid.reference in html and "Only a paid order can be marked delivered." in html
    paid.refresh_from_db()
    pending.refresh_from_db()
    assert paid.status == OrderStatus.DELIVERED and pending.status == OrderStatus.PENDING_PAYMENT


@pytest.mark.parametrize("user", ["manager", "finance"])
def test_only_roles_with_mark_delivered_may_deliver(client_for, request, user):
    order = OrderFactory(status=OrderStatus.PAID)
    c = client_for(request.getfixturevalue(user))
    assert c.post(detail(order, "deliver"), {"confirmed": "1"}).status_code == 403
    c.post(
        CHANGELIST, {"action": "mark_delivered_selected", "_selected_action": [order.pk], "confirmed": "1"}
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


# ---- STK requests and the callback inbox ------------------------------------------------------
def test_stk_request_admin_is_read_only(client_for, agent):
    stk = StkRequestFactory()
    c = client_for(agent)
    assert stk.checkout_request_id in c.get("/admin/ledger/stkrequest/").content.decode()
    assert c.get(f"/admin/ledger/stkrequest/{stk.pk}/change/").status_code == 200
    assert c.get("/admin/ledger/stkrequest/add/").status_code == 403


def _stored_unknown_callback(client, checkout="ws_CO_LATE"):
    stk = StkRequestFactory.build(
        checkout_request_id=checkout, merchant_request_id="1", amount=150, phone="254712345678"
    )
    client.post(
        "/api/callbacks/daraja/test-token/",
        data=json.dumps(daraja_callback_body(stk)),
        content_type="application/json",
    )
    return CallbackLog.objects.get()


def test_callback_inbox_lists_filters_and_pretty_prints(client_for, superuser, client):
    log = _stored_unknown_callback(client)
    c = client_for(superuser)
    html = c.get(
        "/admin/ledger/callbacklog/", {"outcome": "unknown_order", "source": "daraja"}
    ).content.decode()
    assert "ws_CO_LATE" in html
    page = c.get(f"/admin/ledger/callbacklog/{log.pk}/change/").content.decode()
    assert "&quot;stkCallback&quot;: {" in page


def test_superuser_reprocesses_a_callback(client_for, superuser, client):
    log = _stored_unknown_callback(client)
    stk = StkRequestFactory(checkout_request_id="ws_CO_LATE")
    c = client_for(superuser)
    url = f"/admin/ledger/callbacklog/{log.pk}/reprocess/"
    assert "Apply 1 callback(s) again?" in c.get(url).content.decode()
    log.refresh_from_db()
    assert log.attempts == 1  # asking changed nothing
    c.post(url, {"confirmed": "1"})
    c.post(url, {"confirmed": "1"})  # safe any number of times
    log.refresh_from_db()
    assert log.outcome == CallbackOutcome.DUPLICATE and log.attempts == 3
    stk.order.refresh_from_db()
    assert stk.order.status == OrderStatus.PAID
    assert AuditEvent.objects.filter(action="callback.reprocess", actor=superuser).count() == 2


def test_bulk_reprocess_asks_first(client_for, superuser, client):
    log = _stored_unknown_callback(client)
    c = client_for(superuser)
    data = {"action": "reprocess_selected", "_selected_action": [log.pk]}
    assert "Apply 1 callback(s) again?" in c.post("/admin/ledger/callbacklog/", data).content.decode()
    log.refresh_from_db()
    assert log.attempts == 1
    c.post("/admin/ledger/callbacklog/", {**data, "confirmed": "1"})
    log.refresh_from_db()
    assert log.attempts == 2


def test_finance_may_neither_read_the_inbox_nor_reprocess(client_for, finance, client):
    log = _stored_unknown_callback(client)
    c = client_for(finance)
    assert c.get("/admin/ledger/callbacklog/").status_code == 403
    assert c.get(f"/admin/ledger/callbacklog/{log.pk}/reprocess/").status_code == 403
    c.post("/admin/ledger/callbacklog/", {"action": "reprocess_selected", "_selected_action": [log.pk]})
    log.refresh_from_db()
    assert log.attempts == 1


def test_a_double_submitted_stk_push_sends_one_prompt(client_for, agent):
    c = client_for(agent)
    bundle = BundleFactory()
    data = {"bundle": bundle.pk, "phone_number": "0712 345 678", "recipient_phone": ""}
    first = c.post(CHANGELIST + "stk-push/", data)
    second = c.post(CHANGELIST + "stk-push/", data, follow=True)
    order = Order.objects.get()
    assert first.status_code == 302 and StkRequest.objects.count() == 1
    assert second.redirect_chain[-1][0].endswith(f"/admin/ledger/order/{order.pk}/change/")
    assert "still waiting for the PIN" in second.content.decode()


def test_stk_push_form_lists_bundles_with_what_they_give_and_their_price(client_for, agent, bundles):
    """An agent quotes the price to the customer from the list: every option says it."""
    html = client_for(agent).get(CHANGELIST + "stk-push/").content.decode()
    assert "Daily 2GB · 24 hours — Ksh 150</option>" in html
    assert "Monthly 25GB · 30 days — Ksh 1,500</option>" in html
