"""A customer pays on the storefront through the simulator; an agent marks the order delivered."""

import os
import re

import pytest

from ledger.models import CallbackLog, CallbackOutcome, Order, OrderStatus
from tests.browser.conftest import login, screenshot

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_pays_with_the_simulator_and_agent_delivers(
    live_server, settings, bundles, agent, browser_page
):
    from django.core.cache import cache

    cache.clear()
    settings.PAYMENT_GATEWAY = "simulator"
    settings.SIMULATOR_CALLBACK_DELAY = 0
    settings.PUBLIC_BASE_URL = live_server.url  # the simulated callback goes through the real endpoint
    settings.STK_CALLBACK_TOKEN = "browser-token"
    settings.STK_RATE_LIMIT = "100/m"
    page = browser_page

    page.goto(f"{live_server.url}/pay/daily-2gb/")
    page.fill("#phone_number", "0712 345 678")
    page.fill("#recipient_phone", "0722 000 111")
    page.click("#stk-form button[type=submit]")
    status = page.locator("#stk-status .status-text")
    status.filter(has_text=re.compile("Paid")).wait_for()
    screenshot(page, "stk_customer_paid")

    order = Order.objects.get()
    assert order.status == OrderStatus.PAID
    assert order.price == bundles["daily-2gb"].price
    assert order.recipient_msisdn == "254722000111"
    assert order.mpesa_receipt and order.mpesa_receipt in status.inner_text()
    assert CallbackLog.objects.get().outcome == CallbackOutcome.APPLIED

    login(page, live_server, "agent", "pw-agent")
    page.goto(f"{live_server.url}/admin/ledger/order/")
    page.get_by_text(order.reference).first.wait_for()
    screenshot(page, "stk_orders_list")
    page.goto(f"{live_server.url}/admin/ledger/order/{order.pk}/change/")
    page.get_by_role("link", name=re.compile("Mark delivered")).first.click()
    page.get_by_text("Have you loaded the bundle").wait_for()
    screenshot(page, "stk_confirm_delivery")
    page.get_by_test_id("confirm-submit").click()
    reply = page.get_by_test_id("whatsapp-reply")
    reply.wait_for()
    expected = (
        f"Your 2GB bundle for 0722 000 111 is now active. Receipt {order.mpesa_receipt}. "
        "- Tillbook Data Bundles"
    )
    assert reply.input_value() == expected
    page.get_by_test_id("copy-reply").click()
    page.get_by_test_id("copy-reply").filter(has_text="Copied").wait_for()
    screenshot(page, "stk_delivered_reply")

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.delivered_by == agent


def test_a_send_without_answer_tells_the_customer_to_watch_the_phone(
    live_server, settings, bundles, browser_page
):
    """The gateway timed out on the push: the page never claims failure nor offers a second prompt."""
    from unittest import mock

    from django.core.cache import cache

    from ledger.gateways import GatewayUnavailable, SimulatorGateway
    from ledger.models import StkStatus

    cache.clear()
    settings.PAYMENT_GATEWAY = "simulator"
    settings.STK_RATE_LIMIT = "100/m"
    page = browser_page
    timeout = GatewayUnavailable("Daraja did not answer in time", ambiguous=True)
    with mock.patch.object(SimulatorGateway, "initiate_stk", side_effect=timeout):
        page.goto(f"{live_server.url}/pay/daily-2gb/")
        page.fill("#phone_number", "0712 345 678")
        page.click("#stk-form button[type=submit]")
        status = page.locator("#stk-status .status-text")
        status.filter(has_text=re.compile("slow to answer")).wait_for()
    screenshot(page, "stk_send_unknown")
    order = Order.objects.get()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.stk_requests.get().status == StkStatus.UNKNOWN
