"""An order's life is one table on the model (ORDER_TRANSITIONS): the services' one status setter
refuses any other move, the order page shows only the buttons the order can use, and nothing
outside ledger/services changes an order's status."""

import ast
from pathlib import Path

import pytest

from ledger import services
from ledger.models import ORDER_TRANSITIONS, Channel, Order, OrderStatus
from ledger.services.common import _set_status
from tests.ledger.factories import OrderFactory, StkRequestFactory, ledger_settings  # noqa: F401

S = OrderStatus
ROOT = Path(__file__).resolve().parents[2]


# ---- (a) the table and can_become ------------------------------------------------------------
def test_every_status_has_a_row_and_only_real_statuses_appear():
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    for targets in ORDER_TRANSITIONS.values():
        assert targets <= set(OrderStatus)


@pytest.mark.parametrize(
    "current, target, allowed",
    [
        (S.PENDING_PAYMENT, S.PAID, True),
        (S.PENDING_PAYMENT, S.CANCELLED, True),
        (S.PENDING_PAYMENT, S.DELIVERED, False),
        (S.FAILED, S.PENDING_PAYMENT, True),
        (S.EXPIRED, S.PAID, True),
        (S.CANCELLED, S.NEEDS_REVIEW, True),
        (S.CANCELLED, S.PAID, False),
        (S.PAID, S.DELIVERED, True),
        (S.PAID, S.REFUNDED, True),
        (S.DELIVERED, S.REFUNDED, True),
        (S.DELIVERED, S.CANCELLED, False),
        (S.DELIVERED, S.NEEDS_REVIEW, False),
        (S.REFUNDED, S.PAID, False),
        (S.NEEDS_REVIEW, S.DELIVERED, False),
    ],
)
def test_can_become_reads_the_table(current, target, allowed):
    assert Order(status=current).can_become(target) is allowed


def test_the_setter_refuses_a_move_not_in_the_table_and_changes_nothing():
    order = Order(reference="TXN-TEST0001", status=S.DELIVERED, status_reason="kept")
    with pytest.raises(services.OrderTransitionRefused) as exc:
        _set_status(order, S.PENDING_PAYMENT, reason="x")
    assert "delivered" in exc.value.message and "pending payment" in exc.value.message
    assert order.status == S.DELIVERED and order.status_reason == "kept"
    _set_status(order, S.REFUNDED, reason="customer asked")
    assert order.status == S.REFUNDED and order.status_reason == "customer asked"


# ---- (b) the buttons on an order's page ----------------------------------------------------
def _buttons(client, order) -> set[str]:
    html = client.get(f"/admin/ledger/order/{order.pk}/change/").content.decode()
    urls = {
        "deliver": "Mark delivered",
        "retry": "Send prompt again",
        "cancel": "Cancel order",
        "refund": "Refund",
    }
    return {label for path, label in urls.items() if f'/admin/ledger/order/{order.pk}/{path}/"' in html}


@pytest.mark.django_db
@pytest.mark.usefixtures("ledger_settings")
@pytest.mark.parametrize(
    "status, expected",
    [
        (S.PAID, {"Mark delivered", "Refund"}),
        (S.DELIVERED, {"Refund"}),
        (S.PENDING_PAYMENT, {"Cancel order"}),
        (S.REFUNDED, set()),
        (S.NEEDS_REVIEW, set()),
    ],
)
def test_an_order_page_shows_only_the_buttons_its_order_can_use(client_for, superuser, status, expected):
    order = OrderFactory(status=status, channel=Channel.STK, gateway="simulator")
    assert _buttons(client_for(superuser), order) == expected


@pytest.mark.django_db
@pytest.mark.usefixtures("ledger_settings")
def test_a_failed_order_offers_a_new_prompt_and_nothing_else(client_for, superuser):
    order = OrderFactory(status=S.FAILED, channel=Channel.STK, gateway="simulator")
    StkRequestFactory(order=order, status="failed")
    assert _buttons(client_for(superuser), order) == {"Send prompt again"}


# ---- (c) nobody outside ledger/services changes an order's status --------------------------
ORDER_NAMES = {"order", "locked", "o", "paid_order", "till_order"}


def _names_an_order(node) -> bool:
    """`order`, `locked`, `o`… or `<anything>.order`: the usual names of an Order instance."""
    if isinstance(node, ast.Name):
        return node.id in ORDER_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "order"


def _chain_base(node):
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _is_order_queryset(node) -> bool:
    base = _chain_base(node)
    return isinstance(base, ast.Name) and (base.id == "Order" or base.id.lower().startswith("order"))


def order_status_writes(source: str) -> list[int]:
    """Line numbers where ``source`` changes an order's status without the services' setter."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            if any(
                isinstance(t, ast.Attribute) and t.attr == "status" and _names_an_order(t.value) for t in flat
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            has_status = any(k.arg == "status" for k in node.keywords)
            method, receiver = node.func.attr, node.func.value
            writes = {"update", "create", "get_or_create", "update_or_create"}
            if has_status and method in writes and _is_order_queryset(receiver):
                lines.append(node.lineno)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Order"
            and any(k.arg == "status" for k in node.keywords)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_check_catches_the_two_former_offenders():
    refund_in_books = (
        "def order_refund(*, order, reason, user):\n"
        "    order = Order.objects.select_for_update().get(pk=order.pk)\n"
        "    order.status = OrderStatus.REFUNDED\n"
    )
    till_claims = (
        "def _verify_locked(claim, receipt, price, user):\n"
        "    order = Order.objects.create(price=price, channel=Channel.TILL, status=OrderStatus.PAID)\n"
        "def claim_verification_undo(claim):\n"
        "    order.status = OrderStatus.CANCELLED\n"
        "    Order.objects.filter(pk=claim.order_id).update(status=OrderStatus.CANCELLED)\n"
        "    orders.update(status='paid')\n"
        "    claim.order.status, x = 'paid', 1\n"
    )
    assert order_status_writes(refund_in_books) == [3]
    assert order_status_writes(till_claims) == [2, 4, 5, 6, 7]
    # A claim's or a receipt's own status is not an order's.
    assert (
        order_status_writes("claim.status = 'verified'\nClaim.objects.filter(x=1).update(status='x')\n") == []
    )


def test_nothing_outside_ledger_services_changes_an_order_status():
    services_dir = ROOT / "ledger" / "services"
    offenders = []
    for app in ("catalog", "ledger", "reconciliation", "console"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if services_dir in path.parents or "migrations" in path.parts:
                continue
            for line in order_status_writes(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == [], "Change an order's status through a ledger service: " + ", ".join(offenders)
