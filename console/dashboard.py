"""The admin index: what each role needs to see first, each figure a link to the rows behind it."""

import datetime as dt
import json

from django.utils import timezone

from console import access, selectors


def _can(request, *perms) -> bool:
    return any(request.user.has_perm(p) for p in perms)


def dashboard_callback(request, context):
    """unfold's DASHBOARD_CALLBACK. Only the panels the user's role can act on are computed."""
    today = timezone.localdate()
    week_start = today - dt.timedelta(days=today.weekday())
    panels = {"can_find": access.can_find(request.user)}
    if _can(request, "ledger.view_order"):
        sales = selectors.sales_panel(today, week_start)
        panels["sales_today"], panels["sales_week"] = sales.today, sales.week
        panels["awaiting_delivery"] = selectors.orders_awaiting_delivery()
        panels["stk"] = selectors.stk_health()
        panels["chart"] = json.dumps(sales.chart)
        panels["orders_url"] = selectors.changelist("ledger.order")
    if _can(request, "reconciliation.view_claim"):
        panels["claims"] = selectors.claims_waiting()
        panels["can_take_claims"] = _can(request, "reconciliation.verify_claim")
    if _can(request, "reconciliation.view_tillreceipt"):
        panels["unmatched"] = selectors.unmatched_receipts()
        if _can(request, "ledger.view_journalentry"):
            panels.update(selectors.books_watch())
    if _can(request, "catalog.view_bundle"):
        from catalog.models import Bundle

        panels["bundles_active"] = Bundle.objects.active().count()
        panels["bundles_url"] = selectors.changelist("catalog.bundle")
    if request.user.is_superuser or _can(request, "django_q.view_schedule"):
        panels["jobs"] = selectors.job_status()
    context.update({"panels": panels, "today": today, "week_start": week_start})
    return context
