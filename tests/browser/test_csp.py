"""The Content-Security-Policy breaks nothing: the main admin pages and the storefront load and
run their scripts (unfold's Alpine.js, the copy buttons, pay.js) without one CSP violation."""

import os

import pytest
from django.utils import timezone

from reconciliation.services.matcher import claims_reconcile
from tests.browser.conftest import login
from tests.reconciliation.factories import ClaimFactory, code_for, receipt

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every `securitypolicyviolation` event, kept on the page: some violations (a blocked inline
# style attribute, say) never reach the console.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.sourceFile + ":" + e.lineNumber;
  const what = e.violatedDirective + " blocked " + (e.blockedURI || "inline");
  window.__cspViolations.push(what + " at " + where);
});
"""


def _is_csp_message(text: str) -> bool:
    return "Content Security Policy" in text or "Refused to" in text or "unsafe-eval" in text


def test_no_csp_violation_on_the_dashboard_claims_and_storefront(
    live_server, bundles, superuser, browser_page
):
    now = timezone.now()
    r = receipt(code=code_for(timezone.localdate(), "7KQ4CSP"), amount="199", paid_at=now)
    claim = ClaimFactory(code=r.code, claimed_at=now, sender_msisdn="254712345678")
    claims_reconcile(trigger="test")

    page = browser_page
    page.add_init_script(RECORD_VIOLATIONS)
    console_csp, page_errors = [], []
    page.on("console", lambda m: _is_csp_message(m.text) and console_csp.append(f"{page.url}: {m.text}"))
    page.on("pageerror", lambda e: page_errors.append(f"{page.url}: {e}"))

    base = live_server.url
    violations = []

    def visit(path, ready):
        response = page.goto(base + path)
        assert response.status == 200, path
        assert response.headers.get("content-security-policy"), f"no CSP header on {path}"
        page.locator(ready).first.wait_for()
        page.wait_for_load_state("networkidle")
        violations.extend(f"{path}: {v}" for v in page.evaluate("window.__cspViolations"))

    visit("/", "text=Daily 2GB")
    visit(f"/pay/{next(iter(bundles))}/", "form")
    login(page, live_server, "root", "pw-root")
    visit("/admin/", "#dashboard")
    # unfold's Alpine.js really runs under the admin policy ('unsafe-eval' there, and only there).
    assert page.evaluate("typeof window.Alpine === 'object'")
    visit("/admin/reconciliation/claim/", f"text={claim.code}")
    visit(f"/admin/reconciliation/claim/{claim.pk}/change/", f"text={claim.code}")
    visit("/admin/ledger/order/", "#changelist, #content-main, main")

    assert violations == []
    assert console_csp == []
    assert page_errors == []
