"""The callback inbox and the order page's buttons: a callback that failed authentication can
never be applied from the admin, and the page says why; new outcomes and the confirmation (both
sides) are shown; "Send prompt again" is offered only when the services allow it."""

import json
from decimal import Decimal

import pytest

from console.models import AuditEvent
from ledger.models import CallbackLog, CallbackOutcome, CallbackSource, OrderStatus, StkStatus
from tests.ledger.factories import OrderFactory, StkRequestFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
INBOX = "/admin/ledger/callbacklog/"
NEVER_APPLIED = "Failed authentication (wrong token / IP not allowed): kept as an excerpt, never applied"


def cancelled_body(checkout: str) -> str:
    """A Daraja cancellation for an unknown prompt: parses, moves no money, needs no status query."""
    callback = {
        "MerchantRequestID": "29115-1-1",
        "CheckoutRequestID": checkout,
        "ResultCode": 1032,
        "ResultDesc": "Request cancelled by user",
    }
    return json.dumps({"Body": {"stkCallback": callback}})


def stored(*, authenticated=True, checkout="ws_CO_INBOX_1", **fields) -> CallbackLog:
    body = cancelled_body(checkout)
    values = {
        "source": CallbackSource.DARAJA,
        "path": "/api/callbacks/daraja/***/",
        "body": body,
        "body_size": len(body),
        "authenticated": authenticated,
        "outcome": CallbackOutcome.UNKNOWN_ORDER if authenticated else CallbackOutcome.REJECTED,
        "detail": "" if authenticated else "Wrong callback token",
        "checkout_request_id": checkout if authenticated else "",
    }
    return CallbackLog.objects.create(**{**values, **fields})


def unauthenticated_excerpt() -> CallbackLog:
    """What the edge keeps of a wrong-token request: the first bytes and the full size."""
    return stored(authenticated=False, body='{"Body": {"stkCall', body_size=48_213, body_truncated=True)


def detail_url(log, action="change") -> str:
    return f"{INBOX}{log.pk}/{action}/"


# ---- failed authentication: shown, explained, never applied -------------------------------------
def test_unauthenticated_callback_page_says_why_and_offers_no_reprocess(client_for, superuser):
    log = unauthenticated_excerpt()
    html = client_for(superuser).get(detail_url(log)).content.decode()
    assert NEVER_APPLIED in html
    assert "48,213 bytes" in html and "truncated excerpt" in html.lower()
    assert detail_url(log, "reprocess") not in html


def test_authenticated_callback_page_offers_reprocess(client_for, superuser):
    log = stored()
    html = client_for(superuser).get(detail_url(log)).content.decode()
    assert detail_url(log, "reprocess") in html and NEVER_APPLIED not in html


def test_reprocess_url_refuses_an_unauthenticated_callback_even_on_post(client_for, superuser):
    log = unauthenticated_excerpt()
    c = client_for(superuser)
    asked = c.get(detail_url(log, "reprocess"), follow=True)
    posted = c.post(detail_url(log, "reprocess"), {"confirmed": "1"}, follow=True)
    for resp in (asked, posted):
        assert resp.status_code == 200
        assert f"Callback #{log.pk} not re-processed" in resp.content.decode()
        assert "Apply 1 callback(s) again?" not in resp.content.decode()
    after = CallbackLog.objects.get(pk=log.pk)
    assert (after.outcome, after.attempts, after.processed_at) == (CallbackOutcome.REJECTED, 0, None)
    assert not AuditEvent.objects.filter(action__startswith="callback.reprocess").exists()


def test_bulk_reprocess_skips_unauthenticated_callbacks_with_the_reason(client_for, superuser):
    good = stored(checkout="ws_CO_INBOX_GOOD")
    bad = unauthenticated_excerpt()
    c = client_for(superuser)
    data = {"action": "reprocess_selected", "_selected_action": [good.pk, bad.pk]}
    confirm = c.post(INBOX, data).content.decode()
    assert "Apply 1 callback(s) again?" in confirm and "ws_CO_INBOX_GOOD" in confirm
    assert f'value="{bad.pk}"' not in confirm  # the confirmation form carries only the good one
    resp = c.post(INBOX, {**data, "confirmed": "1"}, follow=True)
    assert f"Callback #{bad.pk} not re-processed. {NEVER_APPLIED}" in resp.content.decode()
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.attempts == 1 and good.outcome == CallbackOutcome.UNKNOWN_ORDER
    assert bad.attempts == 0 and bad.outcome == CallbackOutcome.REJECTED and bad.processed_at is None


def test_bulk_reprocess_of_only_unauthenticated_callbacks_changes_nothing(client_for, superuser):
    bad = unauthenticated_excerpt()
    resp = client_for(superuser).post(
        INBOX, {"action": "reprocess_selected", "_selected_action": [bad.pk]}, follow=True
    )
    html = resp.content.decode()
    assert "callback(s) again?" not in html and f"Callback #{bad.pk} not re-processed" in html
    bad.refresh_from_db()
    assert bad.attempts == 0 and bad.outcome == CallbackOutcome.REJECTED


def test_inbox_filters_by_authentication(client_for, superuser):
    stored(checkout="ws_CO_INBOX_SEEN")
    unauthenticated_excerpt()
    html = client_for(superuser).get(INBOX, {"authenticated__exact": "0"}).content.decode()
    assert "ws_CO_INBOX_SEEN" not in html and "Failed" in html


# ---- outcomes, amount and the confirmation ------------------------------------------------------
def test_new_outcomes_are_listed_with_their_labels(client_for, superuser):
    stored(checkout="ws_CO_WAITING", outcome=CallbackOutcome.CONFIRMING, amount=Decimal("150"))
    stored(checkout="ws_CO_NOT_CONF", outcome=CallbackOutcome.UNCONFIRMED)
    html = client_for(superuser).get(INBOX).content.decode()
    assert "Waiting for confirmation" in html and "Not confirmed by the gateway" in html
    assert "150.00" in html


def test_detail_shows_both_sides_of_the_confirmation(client_for, superuser):
    log = stored(
        outcome=CallbackOutcome.APPLIED,
        amount=Decimal("1500"),
        confirmation={
            "callback": {"status": "success", "amount": "1500.00", "receipt": "SAE3YULR0Y"},
            "gateway": {"status": "success", "amount": "150.00", "receipt": "SAE3YULR0Y", "phone": None},
            "disagreements": ["the callback says KES 1500.00, the gateway confirmed KES 150.00"],
        },
    )
    html = client_for(superuser).get(detail_url(log)).content.decode()
    assert 'data-testid="confirmation"' in html
    assert "Callback says" in html and "Gateway answered" in html
    assert "1500.00" in html and "150.00" in html and "1,500.00" in html  # both sides, and the amount
    assert "the callback says KES 1500.00, the gateway confirmed KES 150.00" in html


def test_detail_without_a_confirmation_says_so(client_for, superuser):
    html = client_for(superuser).get(detail_url(stored())).content.decode()
    assert "no status query was needed or made" in html


def test_only_superusers_read_the_inbox(client_for, agent, finance, manager):
    log = stored()
    for user in (agent, finance, manager):
        c = client_for(user)
        assert c.get(INBOX).status_code == 403
        assert c.get(detail_url(log)).status_code == 403
        assert c.get(detail_url(log, "reprocess")).status_code == 403
        index = c.get("/admin/").content.decode()
        assert INBOX not in index  # neither in the sidebar nor on the dashboard


def test_a_group_given_the_view_permission_still_cannot_read_the_inbox(client_for, finance):
    from django.contrib.auth.models import Permission

    finance.user_permissions.add(Permission.objects.get(codename="view_callbacklog"))
    assert client_for(finance).get(INBOX).status_code == 403


def test_superuser_sees_the_inbox_in_the_sidebar(client_for, superuser):
    assert INBOX in client_for(superuser).get("/admin/").content.decode()


# ---- the order page: "Send prompt again" only when the services allow it ------------------------
def order_page(client, order) -> str:
    return client.get(f"/admin/ledger/order/{order.pk}/change/").content.decode()


def test_send_prompt_again_is_offered_for_a_failed_order(client_for, agent):
    stk = StkRequestFactory(order__status=OrderStatus.FAILED, status=StkStatus.FAILED)
    assert f"/admin/ledger/order/{stk.order.pk}/retry/" in order_page(client_for(agent), stk.order)


def test_send_prompt_again_is_hidden_and_refused_while_a_prompt_can_be_answered(client_for, agent):
    stk = StkRequestFactory(status=StkStatus.UNKNOWN, checkout_request_id=None, gateway_reference="")
    c = client_for(agent)
    assert f"/admin/ledger/order/{stk.order.pk}/retry/" not in order_page(c, stk.order)
    resp = c.post(f"/admin/ledger/order/{stk.order.pk}/retry/", {"confirmed": "1"}, follow=True)
    assert "may still reach the phone and be paid" in resp.content.decode()
    assert stk.order.stk_requests.count() == 1


def test_send_prompt_again_is_hidden_for_a_paid_order(client_for, agent):
    order = OrderFactory(status=OrderStatus.PAID)
    assert f"/admin/ledger/order/{order.pk}/retry/" not in order_page(client_for(agent), order)
