"""Reads behind the dashboard, the finder and the customer timeline.

Every function runs a fixed number of queries whatever the number of rows: aggregates in SQL,
no per-row lookups. Links point at the admin changelists with the filters that show the rows
behind a figure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Count, F, Func, Max, Min, OuterRef, Q, Subquery, Sum
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule, Task

from console.access import FIND_SECTIONS, TIMELINE_SECTIONS
from console.kernel.date_filters import range_params
from console.kernel.phones import InvalidPhoneNumber, normalise_msisdn
from ledger.books import selectors as books_selectors
from ledger.books.selectors import AFTER_CLOSE
from ledger.models import (
    Account,
    CallbackLog,
    Channel,
    JournalEntry,
    Order,
    OrderStatus,
    Posting,
    StkRequest,
    StkStatus,
)
from reconciliation.models import Claim, ClaimReason, ClaimStatus, TillReceipt, WhatsAppMessage

ZERO = Decimal("0")


def changelist(model_label: str, **filters) -> str:
    """Admin changelist URL for `app.model`, with query-string filters."""
    app, model = model_label.split(".")
    url = reverse(f"admin:{app}_{model}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def age_label(since: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'4 min', '3 h', '2 d' — how long something has waited."""
    if since is None:
        return "—"
    seconds = max(0, int(((now or timezone.now()) - since).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


# ---------------------------------------------------------------------------------------------
# Sales
# ---------------------------------------------------------------------------------------------
@dataclass
class SalesFigures:
    """The books' sales (ledger.books.selectors.sales_between) with links to the orders behind them."""

    figures: books_selectors.SalesFigures

    @property
    def total(self) -> books_selectors.Tally:
        return self.figures.total

    @property
    def by_channel(self) -> dict[str, books_selectors.Tally]:
        return self.figures.by_channel

    @property
    def pending(self) -> books_selectors.Tally:
        return self.figures.pending

    def _url(self, sale: str, **filters) -> str:
        period = range_params("paid_at", self.figures.start, self.figures.end)
        return changelist("ledger.order", sale=sale, **filters, **period)

    @property
    def url(self) -> str:
        """The orders behind the figure: delivered, paid in the period (the Order admin's filters)."""
        return self._url("yes")

    def channel_url(self, channel: str) -> str:
        return self._url("yes", channel__exact=channel)

    @property
    def stk_url(self) -> str:
        return self.channel_url(Channel.STK)

    @property
    def till_url(self) -> str:
        return self.channel_url(Channel.TILL)

    @property
    def pending_url(self) -> str:
        return self._url("pending")


def sales_since(since: dt.datetime, end: dt.datetime | None = None) -> SalesFigures:
    """Sales and paid-but-not-delivered orders paid since `since` (up to `end`), by channel (one query)."""
    return SalesFigures(books_selectors.sales_between(since, end))


@dataclass
class SalesPanel:
    """The dashboard's sales: today, this week and the chart, read from one query."""

    today: SalesFigures
    week: SalesFigures
    chart: dict


def sales_panel(today: dt.date, week_start: dt.date, chart_days: int = 14) -> SalesPanel:
    first = min(today - dt.timedelta(days=chart_days - 1), week_start)
    days = books_selectors.sales_days(first, today)
    return SalesPanel(
        today=SalesFigures(days.figures(today, today)),
        week=SalesFigures(days.figures(week_start, today)),
        chart=_chart(days, today, chart_days),
    )


def sales_chart(days: int = 14, today: dt.date | None = None) -> dict:
    """Chart.js data: sales (delivered, by the day paid) per Nairobi day and channel, last `days` days."""
    today = today or timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    return _chart(books_selectors.sales_days(first, today), today, days)


def _chart(sales: books_selectors.SalesDays, today: dt.date, days: int) -> dict:
    first = today - dt.timedelta(days=days - 1)
    labels = [first + dt.timedelta(days=i) for i in range(days)]
    colours = {Channel.STK: "#16a34a", Channel.TILL: "#2563eb"}
    per_day = {day: sales.figures(day, day).by_channel for day in labels}
    return {
        "labels": [d.strftime("%d %b") for d in labels],
        "datasets": [
            {
                "label": label,
                "data": [float(per_day[d][channel].amount) for d in labels],  # chart only, not money
                "backgroundColor": colours[channel],
                "maxBarThickness": 28,
            }
            for channel, label in Channel.choices
        ],
    }


# ---------------------------------------------------------------------------------------------
# Work waiting for people
# ---------------------------------------------------------------------------------------------
def orders_awaiting_delivery() -> dict:
    agg = Order.objects.filter(status=OrderStatus.PAID).aggregate(n=Count("id"), oldest=Min("paid_at"))
    return {
        "count": agg["n"],
        "oldest": agg["oldest"],
        "age": age_label(agg["oldest"]),
        "url": changelist("ledger.order", status__exact=OrderStatus.PAID),
    }


def claims_waiting() -> dict:
    """Pending and needs-review claims, needs-review split by reason, with the oldest age."""
    rows = (
        Claim.objects.filter(status__in=[ClaimStatus.PENDING, ClaimStatus.NEEDS_REVIEW])
        .values("status", "reason")
        .annotate(n=Count("id"), oldest=Min("claimed_at"))
    )
    pending = {"count": 0, "oldest": None}
    reasons = {}
    for row in rows:
        if row["status"] == ClaimStatus.PENDING:
            pending["count"] += row["n"]
            pending["oldest"] = min(filter(None, [pending["oldest"], row["oldest"]]), default=None)
        else:
            reasons[row["reason"] or ""] = {"count": row["n"], "oldest": row["oldest"]}
    labels = dict(ClaimReason.choices)
    review = [
        {
            "reason": reason,
            "label": labels.get(reason, "Other"),
            "count": data["count"],
            "age": age_label(data["oldest"]),
            "url": changelist(
                "reconciliation.claim", status__exact=ClaimStatus.NEEDS_REVIEW, reason__exact=reason
            ),
        }
        for reason, data in sorted(reasons.items(), key=lambda kv: -kv[1]["count"])
    ]
    review_oldest = min((d["oldest"] for d in reasons.values() if d["oldest"]), default=None)
    return {
        "pending": {
            **pending,
            "age": age_label(pending["oldest"]),
            "url": changelist("reconciliation.claim", status__exact=ClaimStatus.PENDING),
        },
        "needs_review": {
            "count": sum(d["count"] for d in reasons.values()),
            "age": age_label(review_oldest),
            "url": changelist("reconciliation.claim", status__exact=ClaimStatus.NEEDS_REVIEW),
            "by_reason": review,
        },
    }


def unmatched_receipts() -> dict:
    """Till money not yet tied to an order, and what Unallocated receipts must hold for it: every
    unmatched receipt plus the leftover of receipts that paid a cheaper bundle (amount − price).
    One query: the unmatched and the partly used receipts together, told apart by their order."""
    receipts = TillReceipt.objects.unmatched() | TillReceipt.objects.partly_used()
    unmatched, partly_used = Q(order__isnull=True), Q(order__isnull=False)
    agg = receipts.aggregate(
        n=Count("id", filter=unmatched),
        total=Sum("amount", filter=unmatched),
        oldest=Min("paid_at", filter=unmatched),
        leftover=Sum(F("amount") - F("order__price"), filter=partly_used),
    )
    total, leftover = agg["total"] or ZERO, agg["leftover"] or ZERO
    return {
        "count": agg["n"],
        "sum": total,
        "leftover": leftover,
        "unallocated": total + leftover,
        "oldest": agg["oldest"],
        "age": age_label(agg["oldest"]),
        "url": changelist("reconciliation.tillreceipt", matched="no"),
    }


def books_watch(days: int = 30) -> dict:
    """What finance watches in the books, in two queries: the credit balance of Unallocated
    receipts (positive = money we hold unallocated), and the entries of the last ``days`` whose
    money moved on a closed day (booked on the next open one: look at the closed day again).

    The account's id is read first (with the count) so the sum names it as a constant: the planner
    then reads that account's postings from posting_account_amount instead of hashing them all."""
    since = timezone.now() - dt.timedelta(days=days)
    after_close = JournalEntry.objects.filter(AFTER_CLOSE, posted_at__gte=since).order_by()
    counted = after_close.annotate(n=Func(F("id"), function="COUNT")).values("n")  # no GROUP BY
    row = (
        Account.objects.filter(key="unallocated_receipts")
        .annotate(after_close=Subquery(counted))
        .values_list("id", "after_close")
        .first()
    )
    if row is None:  # no chart of accounts (never after migrate): nothing held, count on its own
        row = (None, after_close.count())
    account_id, count = row
    total = (
        Posting.objects.filter(account_id=account_id).aggregate(s=Sum("amount"))["s"] if account_id else None
    )
    return {
        "unallocated_balance": -(total or ZERO),
        "after_close": {
            "count": count or 0,
            "url": changelist("ledger.journalentry", after_close="yes"),
            "days": days,
        },
    }


def stk_health(hours: int = 24) -> dict:
    """Success rate of STK pushes resolved in the last `hours`, and the commonest failures (one
    query: prompts grouped by status and result code)."""
    since = timezone.now() - dt.timedelta(hours=hours)
    groups = list(
        StkRequest.objects.filter(created_at__gte=since)
        .values("status", "result_code")
        .annotate(n=Count("id"), desc=Max("result_desc"))
        .order_by()
    )
    failed_statuses = {StkStatus.FAILED, StkStatus.EXPIRED, StkStatus.ERROR}
    counts = {
        "ok": sum(g["n"] for g in groups if g["status"] == StkStatus.SUCCESS),
        "failed": sum(g["n"] for g in groups if g["status"] in failed_statuses),
        "waiting": sum(g["n"] for g in groups if g["status"] == StkStatus.QUEUED),
    }
    failures: dict[str, dict] = {}
    for g in groups:
        if g["status"] in failed_statuses:
            code = g["result_code"] or ""
            top = failures.setdefault(code, {"n": 0, "desc": ""})
            top["n"] += g["n"]
            top["desc"] = max(top["desc"], g["desc"] or "")
    top = sorted(failures.items(), key=lambda item: -item[1]["n"])[:3]
    resolved = counts["ok"] + counts["failed"]
    return {
        **counts,
        "rate": round(counts["ok"] * 100 / resolved) if resolved else None,
        "top_failures": [
            {"code": code or "—", "desc": f["desc"] or "No answer", "count": f["n"]} for code, f in top
        ],
        "url": changelist("ledger.stkrequest", **range_params("created_at", since)),
        "failed_url": changelist("ledger.stkrequest", outcome="failed", **range_params("created_at", since)),
    }


# ---------------------------------------------------------------------------------------------
# Background jobs
# ---------------------------------------------------------------------------------------------
WORKER_SILENT_AFTER = dt.timedelta(minutes=5)


def job_status() -> dict:
    """Last run, duration and outcome of each schedule, and whether the worker looks alive (one
    query; with no schedules nothing is watched: no warning, no last activity)."""

    # One query: each schedule with its last task's times (Schedule.task holds that task's id)
    # and the newest task of any kind (is the worker alive?).
    own = Task.objects.filter(id=OuterRef("task"))
    schedules = list(
        Schedule.objects.order_by("name")
        .values("name", "func", "next_run")
        .annotate(
            started=Subquery(own.values("started")[:1]),
            stopped=Subquery(own.values("stopped")[:1]),
            success=Subquery(own.values("success")[:1]),
            newest=Subquery(Task.objects.order_by("-stopped").values("stopped")[:1]),
        )
    )
    now = timezone.now()
    jobs = []
    for s in schedules:
        ran = s["stopped"] is not None
        jobs.append(
            {
                "name": s["name"] or s["func"],
                "last_run": s["stopped"],
                "age": age_label(s["stopped"], now),
                "duration_ms": int((s["stopped"] - s["started"]).total_seconds() * 1000) if ran else None,
                "success": s["success"] if ran else None,
                "next_run": s["next_run"],
            }
        )
    # No schedules (a fresh install): nothing is expected to run, so no warning and no second
    # query for the newest task (the page shows the last activity only with the warning).
    last_stopped = schedules[0]["newest"] if schedules else None
    silent = bool(schedules) and (last_stopped is None or now - last_stopped > WORKER_SILENT_AFTER)
    return {"jobs": jobs, "worker_silent": silent, "last_activity": last_stopped}


# ---------------------------------------------------------------------------------------------
# Find anything / customer timeline
# ---------------------------------------------------------------------------------------------
def _as_msisdn(term: str) -> str | None:

    try:
        return normalise_msisdn(term)
    except (InvalidPhoneNumber, ValueError):
        return None


def find_anything(term: str, limit: int = 20, sections=None) -> dict:
    """Orders, claims, receipts and callbacks matching an M-Pesa code, order reference or phone.

    Exact-match lookups on indexed columns only, so it stays fast at a million rows. `sections`
    (default: all) names the kinds of row to look for; the others stay empty and are not queried.
    """

    sections = FIND_SECTIONS.keys() if sections is None else sections
    term = (term or "").strip()
    empty = {"term": term, "msisdn": None, **{name: [] for name in FIND_SECTIONS}}
    if not term:
        return empty
    code = "".join(term.split()).upper().replace("-", "")
    msisdn = _as_msisdn(term)
    if code.startswith("TXN") and not code.startswith("TXN-"):
        code = "TXN-" + code[3:]

    order_q = Q(reference=code) | Q(mpesa_receipt=code)
    claim_q = Q(code=code)
    receipt_q = Q(code=code)
    callback_q = Q(receipt=code) | Q(checkout_request_id=term)
    if msisdn:
        order_q |= Q(payer_msisdn=msisdn) | Q(recipient_msisdn=msisdn)
        claim_q |= Q(sender_msisdn=msisdn) | Q(recipient_msisdn=msisdn)
    queries = {
        "orders": lambda: Order.objects.filter(order_q).select_related("bundle"),
        "claims": lambda: Claim.objects.filter(claim_q).select_related("receipt", "order"),
        "receipts": lambda: TillReceipt.objects.filter(receipt_q).select_related("order"),
        "callbacks": lambda: CallbackLog.objects.filter(callback_q),
    }
    result = {**empty, "msisdn": msisdn}
    for name in sections:
        result[name] = list(queries[name]()[:limit])
    return result


def customer_timeline(msisdn: str, limit: int = 200, sections=None) -> list[dict]:
    """Every order, claim, receipt and message for one phone, newest first (four queries).

    `sections` (default: all) names the kinds of event to include ("order", "claim", "receipt",
    "message"); receipts are those paying the phone's orders and claims.
    """

    sections = frozenset(TIMELINE_SECTIONS if sections is None else sections)
    events = []
    orders = Order.objects.filter(Q(payer_msisdn=msisdn) | Q(recipient_msisdn=msisdn))
    claims = Claim.objects.filter(Q(sender_msisdn=msisdn) | Q(recipient_msisdn=msisdn))
    if "order" in sections:
        for o in orders.select_related("bundle")[:limit]:
            events.append({"at": o.created_at, "kind": "order", "obj": o})
    if "claim" in sections:
        for c in claims.select_related("receipt")[:limit]:
            events.append({"at": c.claimed_at, "kind": "claim", "obj": c})
    if "message" in sections:
        for m in WhatsAppMessage.objects.filter(sender_msisdn=msisdn)[:limit]:
            events.append({"at": m.sent_at, "kind": "message", "obj": m})
    if "receipt" in sections:
        # The receipts' own rows are what is shown; which orders and claims led to them is not.
        receipt_codes = Q(code__in=orders.filter(mpesa_receipt__gt="").values("mpesa_receipt")[:limit]) | Q(
            code__in=claims.values("code")[:limit]
        )
        for r in TillReceipt.objects.filter(receipt_codes)[:limit]:
            events.append({"at": r.paid_at, "kind": "receipt", "obj": r})
    events.sort(key=lambda e: e["at"], reverse=True)
    return events[:limit]
