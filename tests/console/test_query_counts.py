"""Every admin page a person works in runs a bounded number of queries, whatever the row count.

Seed N rows of everything, count each page's queries, seed to 3N, and the count must not grow.
"""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.kernel.audit import AuditAction, audit_record
from ledger.models import CallbackLog, ExportJob, OrderStatus
from reconciliation.models import (
    ClaimStatus,
    DayClose,
    ReconciliationRun,
    StatementImport,
    WhatsAppImport,
)
from tests.ledger.factories import BundleFactory, OrderFactory, StkRequestFactory
from tests.reconciliation.factories import ClaimFactory, receipt

pytestmark = pytest.mark.django_db
N = 4


def seed(count, offset, user):
    """`count` rows of every model the admin lists, linked the way real rows are."""
    from django_q.models import Schedule, Task

    now = timezone.now()
    for i in range(offset, offset + count):
        bundle = BundleFactory(price=Decimal(100 + i))
        order = OrderFactory(bundle=bundle, status=OrderStatus.PAID, paid_at=now, created_by=user)
        stk = StkRequestFactory(order=order, created_by=user)
        CallbackLog.objects.create(
            source="daraja", body="{}", checkout_request_id=stk.checkout_request_id, stk_request=stk
        )
        r = receipt(amount=str(100 + i), paid_at=now - dt.timedelta(minutes=i))
        imp = WhatsAppImport.objects.create(
            file="whatsapp/x.txt", original_name=f"chat{i}.txt", sha256=f"{i:064d}", uploaded_by=user
        )
        claim = ClaimFactory(
            code=r.code,
            status=ClaimStatus.NEEDS_REVIEW,
            suggested_receipt=r,
            bundle=bundle,
            held_by=user,
            held_until=now + dt.timedelta(minutes=5),
            message__chat_import=imp,
        )
        StatementImport.objects.create(
            file="statements/x.csv", original_name=f"s{i}.csv", sha256=f"{i:064d}", uploaded_by=user
        )
        ReconciliationRun.objects.create(counts={"verified": i})
        DayClose.objects.create(day=dt.date(2025, 1, 1) + dt.timedelta(days=i), closed_by=user, figures={})
        ExportJob.objects.create(created_by=user, filters={"from": "2025-01-01"})
        audit_record(actor=user, action=AuditAction.CLAIM_TAKEN, obj=claim)
        get_user_model().objects.create_user(username=f"staff{i}", is_staff=True)
        Schedule.objects.create(func="math.floor", name=f"job{i}", next_run=now)
        Task.objects.create(
            id=uuid.uuid4().hex, name=f"task{i}", func="math.floor", started=now, stopped=now, success=True
        )


def pages(superuser):
    from ledger.models import Order
    from reconciliation.models import Claim

    urls = {"dashboard": reverse("admin:index"), "find": reverse("console_find") + "?q=0712345678"}
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls[f"{opts.label_lower} list"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    urls["claim page"] = reverse(
        "admin:reconciliation_claim_change", args=[Claim.objects.order_by("pk").first().pk]
    )
    urls["order page"] = reverse("admin:ledger_order_change", args=[Order.objects.order_by("pk").first().pk])
    urls["customer"] = reverse("console_customer", args=["254712345678"])
    return urls


def count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


def test_every_page_runs_the_same_queries_at_n_and_3n_rows(superuser, client_for, bundles):
    c = client_for(superuser)
    seed(N, 0, superuser)
    urls = pages(superuser)
    for url in urls.values():
        c.get(url)  # warm caches (content types, permissions) before counting
    at_n = {name: count(c, url) for name, url in urls.items()}
    seed(2 * N, N, superuser)
    grew = {}
    for name, url in urls.items():
        at_3n = count(c, url)
        if at_3n > at_n[name]:
            grew[name] = (at_n[name], at_3n)
    assert grew == {}, f"pages whose query count grows with rows (N, 3N): {grew}"
    print({k: v for k, v in sorted(at_n.items())})  # the report's per-page query counts (-s)
