"""Shared Playwright fixtures: Debian's chromium (never a downloaded browser) and an admin login.

Browser tests are marked `@pytest.mark.browser`, use pytest-django's `live_server`, and save
screenshots under tests/browser/screenshots/ (git-ignored) via `screenshot(page, name)`.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django would refuse ORM calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def _chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_chromium):
    """A fresh page (own cookies) at a desktop size; call page.set_viewport_size() to change it."""
    context = _chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def login(page, live_server, username, password):
    """Log in through the admin login form and land on the admin index.

    A role that needs a second factor (Finance, superusers) gets an authenticator device here
    and types its current code into the verify page, as a person would.
    """
    device = _phone_for(username)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/**")
    assert "/admin/login/" not in page.url, f"login failed for {username}"
    if device is not None:
        assert "/admin/security/verify/" in page.url, page.url
        page.fill("input[name=otp_token]", _current_code(device))
        page.click("#otp-verify-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")


def _phone_for(username):
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from console.logins import otp_required

    user = get_user_model().objects.get(username=username)
    if not otp_required(user):
        return None
    device, _ = TOTPDevice.objects.get_or_create(user=user, confirmed=True, defaults={"name": "Test phone"})
    return device


def _current_code(device):
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def screenshot(page, name):
    """Save a full-page PNG under tests/browser/screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def both_sizes(page, url, name):
    """Open `url` on a 1366×768 laptop and a 390×844 phone, screenshot both ({name}_laptop,
    {name}_phone), leave the page at the laptop size, and fail if the phone page scrolls sideways."""
    page.set_viewport_size(LAPTOP)
    page.goto(url)
    screenshot(page, f"{name}_laptop")
    page.set_viewport_size(PHONE)
    page.goto(url)
    width = page.evaluate("document.documentElement.scrollWidth")
    screenshot(page, f"{name}_phone")
    page.set_viewport_size(LAPTOP)
    page.goto(url)
    assert width <= PHONE["width"], f"{name} scrolls sideways on a phone ({width}px)"
