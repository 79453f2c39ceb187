"""An insider's forgery, end to end on PostgreSQL: an agent reads every page of an order, then
posts a Daraja success built from everything those pages show. Nothing is paid or booked."""

import json
import re

import pytest
from django.core.management import call_command
from django.test import Client

from ledger import services
from ledger.models import CallbackLog, CallbackOutcome, JournalEntry, Order, OrderStatus
from tests.ledger.factories import daraja_callback_body, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]


def agent_pages(c: Client, order: Order) -> str:
    stk = order.stk_requests.get()
    urls = [
        "/admin/",
        "/admin/ledger/order/",
        f"/admin/ledger/order/{order.pk}/change/",
        "/admin/ledger/stkrequest/",
        f"/admin/ledger/stkrequest/{stk.pk}/change/",
        f"/admin/customer/{order.payer_msisdn}/",
        f"/admin/find/?q={order.reference}",
        f"/api/orders/{order.reference}/",
    ]
    html = []
    for url in urls:
        resp = c.get(url)
        assert resp.status_code in (200, 403), url
        html.append(resp.content.decode())
    return "\n".join(html)


@pytest.mark.parametrize("confirm_against", ["simulated customer cancels", "simulated customer still typing"])
def test_a_forged_success_from_what_an_agent_sees_pays_nothing(agent, bundles, settings, confirm_against):
    settings.STK_CALLBACK_TOKEN = "stk-token-nobody-inside-knows-0123456789"
    if confirm_against == "simulated customer cancels":
        payer = "0700000001"
    else:
        payer, settings.SIMULATOR_CALLBACK_DELAY = "0712345600", 600
    c = Client()
    c.force_login(agent)
    resp = c.post(
        "/api/stk-push/",
        data=json.dumps({"phone_number": payer, "bundle": "daily-2gb"}),
        content_type="application/json",
    )
    assert resp.status_code == 201
    order = Order.objects.get(reference=resp.json()["reference"])
    stk = order.stk_requests.get()

    seen = agent_pages(c, order)
    assert settings.STK_CALLBACK_TOKEN not in seen
    assert stk.checkout_request_id in seen  # the agent does see the prompt's ids

    forged = daraja_callback_body(stk, receipt="UFAKE12345")
    # Every callback-looking path the pages show (redacted), and the real one (a leaked token).
    paths = set(re.findall(r"/api/callbacks/[^\s\"'<]+", seen)) | {"/api/callbacks/daraja/***/"}
    paths.add(f"/api/callbacks/daraja/{settings.STK_CALLBACK_TOKEN}/")
    stranger = Client()
    for path in sorted(paths):
        stranger.post(path, data=json.dumps(forged), content_type="application/json")
    services.callbacks_sweep()

    order.refresh_from_db()
    assert order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.FAILED)
    assert order.mpesa_receipt is None and order.amount_paid is None
    assert not JournalEntry.objects.filter(order=order).exists()
    assert not CallbackLog.objects.filter(outcome=CallbackOutcome.APPLIED).exists()
    call_command("check_books")  # exits 1 (SystemExit) when the books are wrong
