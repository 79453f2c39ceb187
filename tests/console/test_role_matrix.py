"""Every admin URL, requested as every role, answers as the declared matrix says (role_matrix.py).

The URLs are not listed by hand: they come from the project's URL resolver (every registered
ModelAdmin's pages and custom views, unfold's actions) and from each changelist's bulk actions.
One test per role walks them all over a small dataset; every POST by a role the matrix denies
must change no row, and every request an allowed role makes is rolled back so the next one sees
the same data.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from . import role_matrix as rm

pytestmark = pytest.mark.django_db

PHONE = "254712345678"
MODEL_ROUTE = re.compile(r"^admin/(\w+)/(\w+)/")
# Every POST says yes to whatever confirmation the page asks for: a denied role must change
# nothing even so.
CONFIRMED = {"confirmed": "1", "post": "yes", "confirm": "yes", "sign_off": "1"}


def _walk(patterns, prefix="", namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else p.namespace or namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield prefix + str(p.pattern), name


def admin_urls() -> list[tuple[str, str]]:
    """(key, route) of every URL under /admin/, each once."""
    seen = {}
    for route, name in _walk(get_resolver().url_patterns):
        if not route.startswith("admin/"):
            continue  # the public API and storefront have their own tests
        if route.startswith("admin/(?P<url>"):
            name = "admin:catch_all"
        seen.setdefault((name or route, route), None)
    return list(seen)


def bulk_actions() -> list[tuple[str, str]]:
    """(changelist key, action name) for every bulk action of every registered admin."""
    found = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        for _func, name, _desc in model_admin._get_base_actions():
            found.append((f"admin:{opts.app_label}_{opts.model_name}_changelist", name))
    return found


# ---- a small dataset: one row of everything the admin lists ---------------------------------------
def make_dataset(owner) -> dict:
    """Sample rows; returns {model label: pk} of the row each object URL is requested with."""
    from django.contrib.auth.models import Group, User
    from django_q.models import OrmQ, Schedule, Task

    from catalog.models import BundlePriceChange
    from console.kernel.audit import AuditAction, audit_record
    from console.models import AuditEvent
    from ledger import books
    from ledger.models import CallbackLog, ExportJob, ExportStatus, JournalEntry, OrderStatus
    from reconciliation.models import (
        ClaimStatus,
        DayClose,
        ReconciliationRun,
        StatementImport,
        WhatsAppImport,
    )
    from tests.ledger.factories import BundleFactory, OrderFactory, StkRequestFactory
    from tests.reconciliation.factories import ClaimFactory, receipt

    now = timezone.now()
    bundle = BundleFactory()
    unordered = BundleFactory()  # a bundle nobody ordered can be deleted: its delete page opens
    order = OrderFactory(bundle=bundle, status=OrderStatus.PAID, paid_at=now, created_by=owner)
    stk = StkRequestFactory(order=order, created_by=owner)
    callback = CallbackLog.objects.create(
        source="daraja", body="{}", checkout_request_id=stk.checkout_request_id, stk_request=stk
    )
    r = receipt(amount="100", paid_at=now - dt.timedelta(minutes=5))
    chat = WhatsAppImport(original_name="chat.txt", sha256="0" * 64, uploaded_by=owner)
    chat.file.save("chat.txt", ContentFile(b"1/1/25, 10:00 - Customer: hello\n"))
    claim = ClaimFactory(
        code=r.code,
        status=ClaimStatus.NEEDS_REVIEW,
        suggested_receipt=r,
        bundle=bundle,
        sender_msisdn=PHONE,
        message__chat_import=chat,
    )
    statement = StatementImport(original_name="s.csv", sha256="1" * 64, uploaded_by=owner)
    statement.file.save("s.csv", ContentFile(b"Receipt No.,Completion Time,Details,Paid In\n"))
    run = ReconciliationRun.objects.create(counts={"verified": 0})
    close = DayClose.objects.create(day=dt.date(2025, 1, 1), closed_by=owner, figures={})
    export = ExportJob.objects.create(created_by=owner, filters={"from": "2025-01-01"})
    export_done = ExportJob.objects.create(
        created_by=owner,
        filters={"date_from": "2025-01-01", "date_to": "2025-01-31"},
        status=ExportStatus.DONE,
    )
    export_done.file.save("ledger.csv", ContentFile("x"))
    books.post_till_receipt(code=r.code, amount=r.amount, paid_at=r.paid_at)
    entry = JournalEntry.objects.order_by("-pk").first()
    audit_record(actor=owner, action=AuditAction.CLAIM_TAKEN, obj=claim)
    schedule = Schedule.objects.create(func="time.time", name="job", next_run=now)
    ok = Task.objects.create(
        id=uuid.uuid4().hex, name="ok", func="time.time", started=now, stopped=now, success=True
    )
    failed = Task.objects.create(
        id=uuid.uuid4().hex, name="failed", func="time.time", started=now, stopped=now, success=False
    )
    queued = OrmQ.objects.create(key="default", payload="x", lock=now)
    group = Group.objects.create(name="Sample group")
    user = User.objects.create_user(username="sample", is_staff=True)
    from axes.models import AccessAttempt
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    attempt = AccessAttempt.objects.create(
        username="sample", ip_address="127.0.0.1", user_agent="test", failures_since_start=1
    )
    totp = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    static = StaticDevice.objects.create(user=user, name="Recovery codes")
    return {
        "axes.accessattempt": attempt.pk,
        "otp_totp.totpdevice": totp.pk,
        "otp_static.staticdevice": static.pk,
        "auth.user": user.pk,
        "auth.group": group.pk,
        "django_q.schedule": schedule.pk,
        "django_q.success": ok.pk,
        "django_q.failure": failed.pk,
        "django_q.ormq": queued.pk,
        "console.auditevent": AuditEvent.objects.order_by("pk").first().pk,
        "catalog.bundle": unordered.pk,
        "catalog.bundlepricechange": BundlePriceChange.objects.create(
            bundle=bundle, old_price=100, new_price=120, changed_by=owner, changed_at=now
        ).pk,
        "ledger.order": order.pk,
        "ledger.stkrequest": stk.pk,
        "ledger.callbacklog": callback.pk,
        "ledger.account": entry.postings.first().account_id,
        "ledger.journalentry": entry.pk,
        "ledger.exportjob": export.pk,
        "export_done": export_done.pk,
        "reconciliation.claim": claim.pk,
        "reconciliation.whatsappmessage": claim.message_id,
        "reconciliation.whatsappimport": chat.pk,
        "reconciliation.tillreceipt": r.pk,
        "reconciliation.statementimport": statement.pk,
        "reconciliation.reconciliationrun": run.pk,
        "reconciliation.dayclose": close.pk,
    }


def concrete_path(route: str, samples: dict) -> list[tuple[str, str]]:
    """(suffix for the matrix key, path) the route is requested with."""
    if route.startswith("admin/(?P<url>"):
        return [("", "/admin/no-such-page/")]
    if "(?P<app_label>" in route:
        labels = re.search(r"\(\?P<app_label>([^)]*)\)", route).group(1).split("|")
        return [(f" {label}", f"/admin/{label}/") for label in labels]
    path = route
    model = MODEL_ROUTE.match(route)
    label = f"{model.group(1)}.{model.group(2)}" if model else None
    if "<path:content_type_id>" in route:
        bundle_ct = ContentType.objects.get(app_label="catalog", model="bundle")
        path = path.replace("<path:content_type_id>", str(bundle_ct.pk))
        path = path.replace("<path:object_id>", str(samples["catalog.bundle"]))
    path = path.replace("<path:object_id>", str(samples.get(label, 0)))
    path = path.replace("<id>", str(samples.get(label, 0)))
    if "<int:pk>" in path:  # the export download: a finished export with its file
        path = path.replace("<int:pk>", str(samples["export_done"]))
    path = path.replace("<str:msisdn>", PHONE)
    assert "<" not in path and "(" not in path, f"no sample value for {route}"
    return [("", "/" + path)]


@pytest.fixture(autouse=True)
def _sessions_saved_only_when_changed(settings):
    """Staff sessions are renewed by requests (idle timeout): that write is the session's, not a
    change of anything a page or action owns, so it is left out of "changed no row"."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "console.middleware.IdleSessionMiddleware"]


def fingerprint():
    """What a POST could change. On SQLite: the count of rows any statement inserted, updated or
    deleted in any table so far (exact and cheap); elsewhere every row of every admin model."""
    from django.db import connection

    if connection.vendor == "sqlite":
        return connection.connection.total_changes
    return _rows()


def _rows() -> dict:
    from django.contrib.auth.models import Group, User

    from ledger.models import Posting

    models = {*admin.site._registry, User, Group, Posting}
    return {m._meta.label: list(m._default_manager.order_by("pk").values()) for m in models}


def _expected(key: str, role: str, method: str) -> bool | None:
    base = key.split(" ")[0] if key.startswith("admin:app_list") else key
    if base == "admin:app_list":
        return role in rm.APP_PAGES[key.split(" ")[1]] if method == "GET" else None
    get, post = rm.MATRIX[key]
    who = get if method == "GET" else post
    return None if who is None else role in who


def _is_login(location: str) -> bool:
    return location.startswith("/admin/login/")


def _check(key, role, method, response) -> str | None:
    status = response.status_code
    location = response.get("Location", "")
    allowed = _expected(key, role, method)
    base = key.split(" ")[0]
    if allowed:
        special = rm.ALLOWED_STATUS.get(f"{base} {method}")
        if special is not None:
            return None if status == special else f"expected {special}, got {status}"
        if status == 200:
            return None
        if status == 302 and location.startswith("/admin/") and not _is_login(location):
            return None
        return f"allowed, got {status} {location}"
    denied = rm.DENIED_STATUS.get(base)
    if status == 403 or (status == 302 and _is_login(location)) or status == denied:
        return None
    if status == 302 and location == rm.DENIED_REDIRECT.get(base):
        return None
    if " action=" in key and status in (200, 302):
        return None  # Django leaves out actions the user may not run ("no action selected")
    return f"denied, got {status} {location}"


def requests_to_make(samples) -> list[tuple[str, str, str, dict]]:
    """(key, method, path, data) for every rule the matrix has for the resolved URLs."""
    made = []
    for key, route in admin_urls():
        for suffix, path in concrete_path(route, samples):
            full = key + suffix
            for method in ("GET", "POST"):
                made.append((full, method, path, CONFIRMED))
    for key, name in bulk_actions():
        app, model = key.removeprefix("admin:").split(" ")[0], ""
        for m in admin.site._registry:  # app labels may hold an underscore (django_q)
            if f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist" == key:
                app, model = m._meta.app_label, m._meta.model_name
        label = f"{app}.{model}"
        data = {
            "action": name,
            "_selected_action": [samples.get(label, 0)],
            "index": "0",
            **CONFIRMED,
        }
        made.append((f"{key} action={name}", "POST", f"/admin/{app}/{model}/", data))
    return made


def test_every_admin_url_has_a_rule():
    missing = sorted(
        {key for key, _route in admin_urls() if key not in rm.MATRIX}
        | {f"{key} action={name}" for key, name in bulk_actions() if f"{key} action={name}" not in rm.MATRIX}
    )
    assert missing == [], f"URLs nobody has decided access for (add them to role_matrix.py): {missing}"
    resolved = {key for key, _route in admin_urls()} | {f"{k} action={n}" for k, n in bulk_actions()}
    stale = sorted(set(rm.MATRIX) - resolved)
    assert stale == [], f"rules for URLs that no longer exist: {stale}"


@pytest.mark.parametrize("role", rm.ROLES)
def test_role_gets_exactly_what_the_matrix_allows(role, request, superuser):
    samples = make_dataset(superuser)
    user = None if role == rm.ANONYMOUS else request.getfixturevalue(role)
    client = Client()
    wrong = []
    for key, method, path, data in requests_to_make(samples):
        allowed = _expected(key, role, method)
        if allowed is None:
            continue  # a page that changes nothing is not posted to
        with transaction.atomic():
            if user is not None:
                client.force_login(user)
            # A GET never changes anything, whoever sends it; a denied POST neither.
            before = None if (allowed and method == "POST") or key in rm.GET_WRITES else fingerprint()
            response = client.get(path) if method == "GET" else client.post(path, data)
            problem = _check(key, role, method, response)
            if before is not None and fingerprint() != before:
                what = "GET" if method == "GET" else "denied POST"
                problem = (problem or "") + f" and the {what} changed rows"
            transaction.set_rollback(True)
        if problem:
            wrong.append(f"{role} {method} {path} [{key}]: {problem}")
    assert wrong == [], "\n".join(wrong)


def test_no_post_is_accepted_without_the_csrf_token(superuser):
    """Every URL that takes a POST refuses one without the CSRF token, even from a superuser, and
    changes nothing: a page on another site cannot act in a logged-in user's name."""
    samples = make_dataset(superuser)
    client = Client(enforce_csrf_checks=True)
    wrong = []
    for key, method, path, data in requests_to_make(samples):
        if method != "POST" or _expected(key, rm.SUPERUSER, "POST") is None:
            continue
        with transaction.atomic():
            client.force_login(superuser)
            before = fingerprint()
            response = client.post(path, data)
            if response.status_code != 403 or fingerprint() != before:
                wrong.append(f"POST {path} [{key}] without CSRF token: {response.status_code}")
            transaction.set_rollback(True)
    assert wrong == [], "\n".join(wrong)
