"""An agent who opens a Finance page sees the console's page naming the role, at both sizes."""

import os

import pytest

from tests.browser.conftest import login, screenshot

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def test_agent_on_the_journal_is_told_finance_can(live_server, agent, browser_page):
    page = browser_page
    login(page, live_server, "agent", "pw-agent")
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        response = page.goto(f"{live_server.url}/admin/ledger/journalentry/")
        assert response.status == 403
        page.get_by_test_id("forbidden").wait_for()
        roles = page.get_by_test_id("forbidden-roles").inner_text()
        assert roles == "Who can use it: Finance (and superusers)."
        # Said in the page itself too: a phone's header cuts the title short.
        assert page.get_by_test_id("forbidden").get_by_role("heading").inner_text() == (
            "You don't have access to this page"
        )
        screenshot(page, f"forbidden_agent_journal_{size}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"the refused page scrolls sideways at {size} ({width}px)"
        page.get_by_role("link", name="Back to the dashboard").click()
        page.wait_for_url(f"{live_server.url}/admin/")
