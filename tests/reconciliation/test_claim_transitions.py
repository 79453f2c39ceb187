"""A claim's status has one owner: the table on the model, one setter in the services, and the
admin's buttons follow the same table."""

import ast
from pathlib import Path

import pytest
from django.urls import reverse

from reconciliation.models import CLAIM_TRANSITIONS, Claim, ClaimStatus, claim_statuses_allowing
from reconciliation.services import decisions
from reconciliation.services.claim_status import claim_status_set
from reconciliation.services.errors import ClaimTransitionRefused
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

ROOT = Path(__file__).resolve().parents[2]
P, R, V, X, S = (
    ClaimStatus.PENDING,
    ClaimStatus.NEEDS_REVIEW,
    ClaimStatus.VERIFIED,
    ClaimStatus.REJECTED,
    ClaimStatus.SUPERSEDED,
)


def test_the_table_lists_every_status_and_every_allowed_move():
    moves = {(a, b) for a, targets in CLAIM_TRANSITIONS.items() for b in targets.values()}
    assert set(CLAIM_TRANSITIONS) == set(ClaimStatus.values)
    assert moves == {
        (P, P), (P, R), (P, V), (P, X), (P, S),
        (R, P), (R, R), (R, V), (R, X), (R, S),
        (V, R),
        (S, P),
    }  # fmt: skip
    assert CLAIM_TRANSITIONS[X] == {}  # a rejection is final
    assert set(claim_statuses_allowing("verify")) == {P, R}
    assert claim_statuses_allowing("undo_verification") == (V,)


@pytest.mark.parametrize(
    "status, can, cannot",
    [
        (P, ["verify", "reject", "supersede"], ["undo_verification", "reopen"]),
        (R, ["verify", "reject", "wait"], ["undo_verification"]),
        (V, ["undo_verification", "payment_reversed"], ["verify", "reject"]),
        (X, [], ["verify", "reject", "undo_verification", "reopen"]),
        (S, ["reopen"], ["verify", "reject"]),
    ],
)
def test_a_claim_knows_which_transitions_apply(status, can, cannot):
    claim = Claim(status=status)
    assert all(claim.can(t) for t in can) and not any(claim.can(t) for t in cannot)
    assert claim.is_open == (status in (P, R))


@pytest.mark.parametrize("start, to", [(X, V), (X, P), (V, X), (V, P), (S, V), (V, S)])
def test_the_setter_refuses_a_move_the_table_does_not_allow(start, to):
    claim = Claim(status=start)
    with pytest.raises(ClaimTransitionRefused):
        claim_status_set(claim, to)
    assert claim.status == start


@pytest.mark.parametrize("start, to", [(P, V), (R, X), (V, R), (S, P), (R, P)])
def test_the_setter_makes_an_allowed_move(start, to):
    claim = Claim(status=start)
    claim_status_set(claim, to)
    assert claim.status == to


# --- the claim page shows only the buttons whose transition applies ------------------------------
def _buttons(client, claim) -> set[str]:
    body = client.get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    names = ["verify", "reject", "undo_verification", "take_over", "release"]
    return {n for n in names if reverse(f"admin:reconciliation_claim_{n}", args=[claim.pk]) in body}


@pytest.mark.django_db
def test_buttons_for_a_pending_a_verified_and_a_rejected_claim(client_for, finance, agent, bundles):
    client = client_for(finance)
    pending = ClaimFactory(code=receipt(amount="150").code)
    other = ClaimFactory(code="UC11ABCDEF")
    assert _buttons(client, pending) == {"verify", "reject"}

    claims_reconcile(trigger="test", now=NOW)
    pending.refresh_from_db()
    assert pending.status == V
    assert _buttons(client, pending) == {"undo_verification"}

    decisions.claim_reject(claim_id=other.pk, reason="Paid another shop", user=agent)
    assert _buttons(client, other) == set()


@pytest.mark.django_db
def test_a_refused_transition_changes_nothing_in_the_database(agent, bundles):
    claim = ClaimFactory(code="UC11ABCDEF")
    decisions.claim_reject(claim_id=claim.pk, reason="Paid another shop", user=agent)
    with pytest.raises(Exception):  # noqa: B017 - ClaimAlreadyDecided, the decisions' own guard
        decisions.claim_reject(claim_id=claim.pk, reason="again", user=agent)
    assert Claim.objects.get(pk=claim.pk).status == X


# --- nobody else writes a claim's status -----------------------------------------------------
SETTER = Path("reconciliation/services/claim_status.py")
APPS = ("reconciliation", "ledger", "catalog", "console")


def _claimish(node: ast.AST) -> bool:
    """An expression naming a claim: `claim`, `old_claim`, `self.claim`, `Claim.objects...`."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        if isinstance(node, ast.Attribute) and "claim" in node.attr.lower():
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return isinstance(node, ast.Name) and "claim" in node.id.lower()


def _claim_status_value(node: ast.AST | None) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "ClaimStatus" for n in ast.walk(node)) if node else False


def status_writes(source: str) -> list[int]:
    """Lines that write a claim's status other than through the setter."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            values = [node.value]
            for target in targets:
                if isinstance(target, ast.Tuple):
                    pairs = zip(
                        target.elts,
                        node.value.elts
                        if isinstance(node.value, ast.Tuple)
                        else [node.value] * len(target.elts),
                        strict=False,
                    )
                else:
                    pairs = [(target, values[0])]
                for t, v in pairs:
                    is_status = isinstance(t, ast.Attribute) and t.attr == "status"
                    if is_status and (_claimish(t.value) or _claim_status_value(v)):
                        found.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            status = next((k.value for k in node.keywords if k.arg == "status"), None)
            if status is None:
                continue
            method = node.func.attr
            if method in ("update", "update_or_create", "get_or_create") and (
                _claimish(node.func.value) or _claim_status_value(status)
            ):
                found.append(node.lineno)
            if method in ("create", "bulk_create") and _claimish(node.func.value):
                found.append(node.lineno)
    return sorted(set(found))


def test_the_checker_catches_every_form_of_a_status_write():
    offenders = """
claim.status = ClaimStatus.VERIFIED
old.status, old.reason = ClaimStatus.PENDING, ""
self.claim.status = "rejected"
Claim.objects.filter(pk=1).update(status=ClaimStatus.REJECTED)
claims.update(status="verified")
Claim.objects.create(message=m, status=ClaimStatus.VERIFIED)
"""
    assert status_writes(offenders) == [2, 3, 4, 5, 6, 7]
    harmless = """
order.status = OrderStatus.PAID
Order.objects.filter(pk=1).update(status=OrderStatus.CANCELLED)
claim_status_set(claim, ClaimStatus.VERIFIED)
Claim.objects.filter(status=ClaimStatus.PENDING)
"""
    assert status_writes(harmless) == []


def test_only_the_setter_writes_a_claim_status():
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts or rel == SETTER:
                continue
            offenders += [f"{rel}:{line}" for line in status_writes(path.read_text())]
    assert offenders == []
