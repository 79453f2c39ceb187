"""The orders list says per row what to do next; an agent's order page shows only usable buttons."""

import pytest

from ledger.models import Channel
from ledger.models import OrderStatus as S
from tests.ledger.factories import OrderFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]


def _next_steps(client):
    from ledger.admin.orders import OrderAdmin

    response = client.get("/admin/ledger/order/")
    admin = response.context["cl"].model_admin
    assert isinstance(admin, OrderAdmin)
    return {o.reference: admin.display_next_step(o)[1] for o in response.context["cl"].result_list}


@pytest.mark.parametrize(
    "status, channel, step",
    [
        (S.PAID, Channel.TILL, "Deliver"),
        (S.PENDING_PAYMENT, Channel.STK, "Wait for payment"),
        (S.FAILED, Channel.STK, "Send prompt again if asked"),
        (S.FAILED, Channel.TILL, "—"),
        (S.NEEDS_REVIEW, Channel.STK, "Finance reviews"),
        (S.DELIVERED, Channel.STK, "—"),
        (S.REFUNDED, Channel.STK, "—"),
        (S.CANCELLED, Channel.STK, "—"),
    ],
)
def test_next_step_per_status(client_for, agent, status, channel, step):
    order = OrderFactory(status=status, channel=channel)
    assert _next_steps(client_for(agent)) == {order.reference: step}


def test_next_step_column_is_on_the_list(client_for, agent):
    OrderFactory(status=S.PAID)
    body = client_for(agent).get("/admin/ledger/order/").content.decode()
    assert "next step" in body.lower() and ">Deliver<" in body.replace("\n", "").replace("  ", "")


@pytest.mark.parametrize("status", [S.DELIVERED, S.REFUNDED, S.CANCELLED])
def test_a_finished_order_page_offers_no_deliver_retry_or_cancel_to_an_agent(client_for, agent, status):
    order = OrderFactory(status=status, channel=Channel.STK, gateway="simulator")
    html = client_for(agent).get(f"/admin/ledger/order/{order.pk}/change/").content.decode()
    for path in ("deliver", "retry", "cancel"):
        assert f'/admin/ledger/order/{order.pk}/{path}/"' not in html
