"""A day's close figures as people read them: tables with links to the rows behind each line,
"paid, delivery pending" apart from the differences, and a status in words."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from console.kernel.money import money
from console.kernel.tables import figures_table
from reconciliation.services.close import close_status

FIGURES_TEMPLATE = "admin/reconciliation/close/figures.html"
PENDING_TITLE = "Paid, delivery pending (not a difference)"


def amount_text(value) -> str:
    try:
        return money(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        return "—" if value in (None, "") else str(value)


def _count(n, noun: str) -> str:
    if n is None:
        return "—"
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _link(url_name: str, pk, label) -> str:
    if not pk or not label:
        return label or "—"
    try:
        url = reverse(url_name, args=[pk])
    except NoReverseMatch:
        return label
    return format_html(
        '<a class="text-primary-600 dark:text-primary-500 underline" href="{}">{}</a>', url, label
    )


def _receipt(row: dict) -> str:
    return _link("admin:reconciliation_tillreceipt_change", row.get("receipt_id"), row.get("receipt"))


def _order(row: dict) -> str:
    return _link("admin:ledger_order_change", row.get("order_id"), row.get("order"))


def _rows_table(title: str, rows: list[dict], testid: str, *, what: bool = True) -> dict:
    body = []
    for row in rows:
        first = _receipt(row)
        if row.get("entry_id"):
            entry = _link("admin:ledger_journalentry_change", row["entry_id"], "entry")
            first = format_html("{} ({})", first, entry)
        body.append(
            [*([row.get("what", "")] if what else []), first, _order(row), amount_text(row.get("amount"))]
        )
    headers = [*(["What"] if what else []), "Receipt", "Order", "KES"]
    return figures_table(headers, body, amounts=(len(headers) - 1,), title=title, testid=testid)


def close_context(figures: dict) -> dict:
    """Template context for FIGURES_TEMPLATE from a day's figures (live or as signed off)."""
    f = figures or {}
    totals = figures_table(
        ["Figure", "Rows", "KES"],
        [
            ["Statement / till paid in", _count(f.get("receipts"), "receipt"), amount_text(f.get("paid_in"))],
            ["Books: M-Pesa till movement", "", amount_text(f.get("books_till_movement"))],
            [
                "Till bundles delivered",
                _count(f.get("orders_delivered"), "order"),
                amount_text(f.get("delivered")),
            ],
        ],
        counts=(1,),
        amounts=(2,),
        title="The day's money three ways",
        testid="close-totals",
    )
    differences = [
        {
            **_rows_table(
                d.get("title") or d.get("check", "Difference"), d.get("rows") or [], "close-differences"
            ),
            "difference": amount_text(d.get("difference")),
        }
        for d in f.get("differences") or []
    ]
    pending = f.get("delivery_pending") or {}
    other_days = [
        [_order(r), r.get("receipt") or "—", r.get("paid") or "—", amount_text(r.get("amount"))]
        for r in f.get("delivered_from_other_days") or []
    ]
    late = [
        [r.get("entry"), r.get("kind"), r.get("receipt") or "—", r.get("booked")]
        for r in f.get("after_close") or []
    ]
    status = f.get("status") or close_status(f)
    return {
        "status": status,
        "balanced": f.get("balanced", False),
        "totals": totals,
        "differences": differences,
        "pending": pending,
        "pending_amount": amount_text(pending.get("amount", "0")),
        "pending_table": _rows_table(PENDING_TITLE, pending["rows"], "close-pending", what=False)
        if pending.get("rows")
        else None,
        "other_days": figures_table(
            ["Order", "Receipt", "Paid on", "KES"],
            other_days,
            amounts=(3,),
            title="Delivered this day, paid on another day (not a difference)",
            testid="close-other-days",
        )
        if other_days
        else None,
        "after_close": figures_table(
            ["Entry", "Kind", "Receipt", "Booked"],
            late,
            title="Booked after close",
            testid="close-after-close",
        )
        if late
        else None,
        "legacy_differences": bool(f.get("differences")) and not any(d.get("rows") for d in f["differences"]),
    }


def close_html(figures: dict) -> str:
    return render_to_string(FIGURES_TEMPLATE, close_context(figures))
