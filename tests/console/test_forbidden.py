"""A refused page is the console's page saying who may use it, not a bare "403 Forbidden"."""

import re

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from console import access, views
from console.roles import roles_setup
from tests.ledger.factories import OrderFactory

pytestmark = pytest.mark.django_db

TITLE = "You don&#x27;t have access to this page"


def _roles_line(html):
    match = re.search(r'data-testid="forbidden-roles">(.*?)</p>', html, re.S)
    assert match, "no roles line"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/ledger/journalentry/",  # the journal
        "/admin/ledger/account/trial-balance/",  # a custom view under the books
        "/admin/reconciliation/statementimport/",  # statement imports
        "/admin/ledger/exportjob/",  # ledger exports
    ],
)
def test_an_agent_on_a_finance_page_is_told_finance_can(client_for, agent, url):
    response = client_for(agent).get(url)
    assert response.status_code == 403
    html = response.content.decode()
    assert TITLE in html
    assert _roles_line(html) == "Who can use it: Finance (and superusers)."
    assert "signed in as <strong>agent</strong> (Support agent)" in html
    assert 'id="nav-sidebar"' in html and "/admin/logout/" in html  # inside the console's layout
    assert "Back to the dashboard" in html


def test_a_manager_on_orders_is_told_both_roles_that_see_them(client_for, manager):
    response = client_for(manager).get("/admin/ledger/order/")
    assert response.status_code == 403
    expected = "Who can use it: Finance or Support agent (and superusers)."
    assert _roles_line(response.content.decode()) == expected


def test_a_refused_button_names_the_role_holding_its_permission(client_for, agent):
    """The agent sees the order, but Refund is Finance's: the page names the action's permission."""
    order = OrderFactory(status="paid")
    response = client_for(agent).get(f"/admin/ledger/order/{order.pk}/refund/")
    assert response.status_code == 403
    assert _roles_line(response.content.decode()) == "Who can use it: Finance (and superusers)."


def test_a_page_no_role_holds_says_ask_a_manager(client_for, agent):
    response = client_for(agent).get("/admin/ledger/callbacklog/")  # superusers only
    assert response.status_code == 403
    html = response.content.decode()
    assert TITLE in html and _roles_line(html).startswith("Ask a manager")


def test_a_view_may_name_the_permission_it_needs(rf: RequestFactory, agent):
    request = rf.get("/anything/")
    request.user = agent
    needed = access.permissions_needed(request, PermissionDenied("reconciliation.import_statement"))
    assert needed == ["reconciliation.import_statement"]
    assert access.roles_with(needed) == ["Finance"]
    assert access.roles_with(["reconciliation.verify_claim"]) == ["Finance", "Support agent"]
    assert access.roles_with([]) == []


def test_a_logged_in_non_staff_user_gets_the_plain_page(rf, django_user_model):
    roles_setup()
    user = django_user_model.objects.create_user(username="someone", password="x")
    request = rf.get("/admin/ledger/journalentry/")
    request.user = user
    response = views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    html = response.content.decode()
    assert TITLE in html and "Log in with another account" in html
    assert "Finance" in _roles_line(html)
