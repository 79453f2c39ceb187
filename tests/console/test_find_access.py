"""Find anything and the customer timeline show each viewer only what their role may see."""

import pytest
from django.urls import reverse

from ledger.models import CallbackLog

from .test_dashboard import make_claim, make_order, make_receipt

pytestmark = pytest.mark.django_db

PHONE = "254712345678"


@pytest.fixture
def seeded(bundles):
    order = make_order(bundles["daily-2gb"], mpesa_receipt="SAE3YULR0Y", phone=PHONE)
    claim = make_claim("TCG3YADR1X", sender=PHONE)
    receipt = make_receipt("TCG3YADR1X")
    callback = CallbackLog.objects.create(
        source="daraja", path="/api/callbacks/daraja/x/", body='{"secret": "body"}', receipt="TCG3YADR1X"
    )
    return {"order": order, "claim": claim, "receipt": receipt, "callback": callback}


def links(seeded):
    return {
        "order": reverse("admin:ledger_order_change", args=[seeded["order"].pk]),
        "claim": reverse("admin:reconciliation_claim_change", args=[seeded["claim"].pk]),
        "receipt": reverse("admin:reconciliation_tillreceipt_change", args=[seeded["receipt"].pk]),
        "callback": reverse("admin:ledger_callbacklog_change", args=[seeded["callback"].pk]),
    }


@pytest.mark.parametrize(
    "who, shown",
    [
        ("superuser", {"order", "claim", "receipt", "callback"}),
        ("finance", {"order", "claim", "receipt"}),
        ("agent", {"order", "claim", "receipt"}),
    ],
)
def test_find_shows_only_the_sections_the_role_may_view(request, client_for, seeded, who, shown):
    c = client_for(request.getfixturevalue(who))
    html = "".join(
        c.get(reverse("console_find"), {"q": q}).content.decode() for q in ("TCG3YADR1X", "0712345678")
    )
    for kind, url in links(seeded).items():
        assert (url in html) == (kind in shown), (who, kind)


@pytest.mark.parametrize(
    "who, shown",
    [
        ("superuser", {"order", "claim", "receipt"}),
        ("finance", {"order", "claim", "receipt"}),
        ("agent", {"order", "claim", "receipt"}),
    ],
)
def test_timeline_shows_only_the_sections_the_role_may_view(request, client_for, seeded, who, shown):
    html = client_for(request.getfixturevalue(who)).get(reverse("console_customer", args=[PHONE]))
    html = html.content.decode()
    for kind, url in links(seeded).items():
        assert (url in html) == (kind in shown), (who, kind)


def test_a_manager_finds_nothing_and_sees_no_timeline(client_for, manager, seeded):
    c = client_for(manager)
    assert c.get(reverse("console_find"), {"q": "TCG3YADR1X"}).status_code == 403
    assert c.get(reverse("console_customer", args=[PHONE])).status_code == 403
    index = c.get(reverse("admin:index")).content.decode()
    assert reverse("console_find") not in index  # neither the sidebar item nor the dashboard box


def test_a_user_with_only_the_order_permission_sees_orders_only(client_for, django_user_model, seeded):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username="orders-only", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_order", content_type__app_label="ledger"))
    c = client_for(user)
    html = c.get(reverse("console_find"), {"q": "0712345678"}).content.decode()
    html += c.get(reverse("console_find"), {"q": "TCG3YADR1X"}).content.decode()
    html += c.get(reverse("console_customer", args=[PHONE])).content.decode()
    found = {kind for kind, url in links(seeded).items() if url in html}
    assert found == {"order"}
