"""A customer's day in Debian's chromium, on a 1366×768 laptop and a 390×844 phone: the catalogue,
the pay page, a mistyped number (red border), a prompt that takes its time (the page says what is
happening and offers a new prompt only once the first cannot be paid), and a retired bundle's link.

Screenshots go to tests/browser/screenshots/customer_*_<size>.png.
"""

import os
import re
import time
from unittest import mock

import pytest

from ledger.gateways import SimulatorGateway
from ledger.models import Order, OrderStatus, StkRequest, StkStatus
from tests.browser.conftest import screenshot
from tests.catalog.factories import BundleFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
CANCELS = "0700 000 001"  # the simulator's customer cancels this phone's prompt
RETIRED = "daily-1gb-retired"


def _wait_until(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _rgb(css_colour):
    return tuple(int(v) for v in re.findall(r"\d+", css_colour)[:3])


def _look(page, name, size):
    """Screenshot the page and check nothing pushes it sideways (on a phone that means scrolling)."""
    screenshot(page, f"customer_{name}_{size}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= SIZES[size]["width"], f"{name} scrolls sideways at {size} ({width}px)"


@pytest.fixture
def shop(live_server, settings, bundles):
    from django.core.cache import cache

    cache.clear()
    BundleFactory(name="Daily 1GB (old)", slug=RETIRED, active=False)
    settings.PAYMENT_GATEWAY = "simulator"
    settings.SIMULATOR_CALLBACK_DELAY = 0
    settings.PUBLIC_BASE_URL = live_server.url  # simulated callbacks go through the real endpoint
    settings.STK_CALLBACK_TOKEN = "browser-token"
    settings.STK_RATE_LIMIT = "100/m"
    settings.STK_WAIT_HINT_SECONDS = 1  # 30 s in production
    yield live_server.url
    cache.clear()


@pytest.mark.parametrize("size", list(SIZES))
def test_customer_day(shop, browser_page, size):
    page = browser_page
    page.set_viewport_size(SIZES[size])

    # The catalogue, then a bundle's pay page.
    page.goto(f"{shop}/")
    page.get_by_role("heading", name="Buy data bundles").wait_for()
    assert page.locator('link[rel="icon"]').get_attribute("href").endswith("favicon.svg")
    _look(page, "catalogue", size)
    page.locator('li[data-slug="daily-2gb"] a.button').click()
    page.wait_for_url(f"{shop}/pay/daily-2gb/")
    _look(page, "pay", size)

    # A mistyped number: the server names the field, the field turns red and says why.
    phone = page.locator("#phone_number")
    phone.fill("0712 34")
    page.click("#stk-form button[type=submit]")
    error = page.locator('.field-error[data-field="phone_number"]')
    error.wait_for()
    assert "0712 345 678" in error.inner_text()
    assert phone.get_attribute("aria-invalid") == "true"
    assert "is-invalid" in phone.get_attribute("class")
    red, green, blue = _rgb(phone.evaluate("el => getComputedStyle(el).borderTopColor"))
    assert red > 150 and green < 90 and blue < 90, (red, green, blue)
    assert Order.objects.count() == 0
    _look(page, "bad_phone", size)

    # A prompt with no answer yet: after the (shortened) wait the page says what is happening,
    # names the phone with its middle digits hidden, and offers no second prompt.
    with mock.patch.object(SimulatorGateway, "after_send"):  # the customer has not answered
        phone.fill("0712 345 678")
        page.click("#stk-form button[type=submit]")
        page.locator("#stk-status .status-text").filter(has_text="Check your phone").wait_for()
        assert phone.get_attribute("aria-invalid") is None  # the error is cleared on a new try
        assert "is-invalid" not in phone.get_attribute("class")
        hint = page.get_by_test_id("wait-hint")
        hint.wait_for(state="visible")
        assert "We sent a payment prompt to 0712 *** 678" in hint.inner_text()
        assert "do not pay twice" in page.get_by_test_id("wait-next").inner_text()
        assert page.get_by_test_id("stk-resend").is_hidden()
        _look(page, "waiting", size)
    waiting = Order.objects.get()
    assert waiting.status == OrderStatus.PENDING_PAYMENT
    assert waiting.stk_requests.get().status == StkStatus.QUEUED

    # A prompt the customer cancelled can no longer be paid: now a new prompt is offered, and sent once.
    page.goto(f"{shop}/pay/daily-2gb/")
    page.fill("#phone_number", CANCELS)
    page.click("#stk-form button[type=submit]")
    resend = page.get_by_test_id("stk-resend")
    resend.wait_for(state="visible")
    assert "cancelled" in page.locator("#stk-status .status-text").inner_text()
    assert page.locator("#stk-retry").inner_text() == "Use another number"
    _look(page, "cancelled", size)
    cancelled = Order.objects.exclude(pk=waiting.pk).get()
    assert cancelled.status == OrderStatus.FAILED
    with page.expect_response(lambda r: r.url.endswith("/retry/")) as sent:
        resend.click()
    assert sent.value.status == 201
    # The simulator's customer cancels again: a second prompt on the same order, then offered again.
    _wait_until(lambda: StkRequest.objects.filter(order=cancelled, status=StkStatus.FAILED).count() == 2)
    resend.wait_for(state="visible")
    assert Order.objects.count() == 2

    # A retired bundle's old link: 410, in the storefront's style, pointing at the catalogue.
    response = page.goto(f"{shop}/pay/{RETIRED}/")
    assert response.status == 410
    page.get_by_role("heading", name="This bundle is no longer sold").wait_for()
    _look(page, "retired", size)
    page.get_by_test_id("see-bundles").click()
    page.wait_for_url(f"{shop}/")
    assert page.locator(f'li[data-slug="{RETIRED}"]').count() == 0
