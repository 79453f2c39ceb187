"""The claim list's columns and the claim page's evidence (message, parse, signals, candidates)."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.decorators import display

from console.kernel.admin_base import money, nairobi
from console.kernel.links import customer_link
from console.kernel.phones import phone_display
from reconciliation import selectors
from reconciliation.admin.common import AGE_COLOURS, age_text, right
from reconciliation.models import ClaimStatus
from reconciliation.services import queue, replies
from reconciliation.services.evaluate import RESULT_LABELS, signal_label
from reconciliation.services.matcher import other_payee_problem

TEMPLATES = "admin/reconciliation/claim"
STATUS_COLOURS = {
    ClaimStatus.PENDING: "info",
    ClaimStatus.VERIFIED: "success",
    ClaimStatus.NEEDS_REVIEW: "warning",
    ClaimStatus.REJECTED: "danger",
}
SIGNAL_COLOURS = {"pass": "text-green-600", "fail": "text-red-600", "na": "text-base-400"}


def _sender_words(label: str, msisdn: str) -> str:
    """A chat's contact name as written, a number as staff read numbers (0712 345 678)."""
    if label and not label.lstrip("+").replace(" ", "").replace("-", "").isdigit():
        return f"{label} ({phone_display(msisdn)})" if msisdn else label
    return phone_display(msisdn or label)


class ClaimColumnsMixin:
    """Read-only displays of ClaimAdmin: no decision is made here."""

    # ---- columns ---------------------------------------------------------------------------
    @display(description="waiting", ordering="claimed_at", label=AGE_COLOURS)
    def display_age(self, obj):
        # How long an open claim has waited; a decided one waits no more (its status says why).
        if not obj.is_open:
            return "done", "—"
        return age_text(obj.claimed_at)

    @display(description="sender", ordering="sender_msisdn")
    def display_sender(self, obj):
        label = obj.message.sender_label
        phone = (
            customer_link(obj.sender_msisdn, phone_display(obj.sender_msisdn))
            if obj.sender_msisdn
            else "unknown"
        )
        if label and label != obj.sender_msisdn and not label.lstrip("+").replace(" ", "").isdigit():
            return format_html("{}<br>{}", label, phone)
        return phone

    @display(description="recipient", ordering="recipient_msisdn")
    def display_recipient(self, obj):
        return customer_link(obj.recipient_msisdn, phone_display(obj.recipient_msisdn))

    @display(description="status", ordering="status", label=STATUS_COLOURS)
    def display_status(self, obj):
        return obj.status, obj.status.replace("_", " ")

    @display(description="reason", ordering="reason", label=True)
    def display_reason(self, obj):
        # The short code in the list (the long sentence is on the claim page).
        return obj.reason.replace("_", " ") if obj.reason else "—"

    @display(description="amount (KES)")
    def display_amount(self, obj):
        receipt = obj.receipt or (obj.suggested_receipt if obj.suggested_receipt_id else None)
        amount = receipt.amount if receipt else obj.claimed_amount
        return right(money(amount))

    @display(description="bundle")
    def display_bundle(self, obj):
        return obj.bundle.name if obj.bundle_id else "—"

    @display(description="sent (Nairobi)", ordering="claimed_at")
    def display_claimed(self, obj):
        return nairobi(obj.claimed_at)

    @display(description="held by", ordering="held_until")
    def display_held(self, obj):
        if not obj.is_open or not queue.hold_is_active(obj):
            return "—"
        return format_html(
            '<span class="whitespace-nowrap" data-testid="held-by">{} until {}</span>',
            obj.held_by.get_username(),
            timezone.localtime(obj.held_until).strftime("%H:%M"),
        )

    # ---- detail ----------------------------------------------------------------------------
    @display(description="status")
    def display_status_detail(self, obj):
        level, age = age_text(obj.claimed_at)
        reason = f" — {obj.get_reason_display()}" if obj.reason else ""
        return format_html(
            '<strong data-testid="claim-status">{}{}</strong> <span class="text-base-500">({} old)</span>',
            obj.get_status_display(),
            reason,
            age,
        )

    @display(description="message")
    def display_message(self, obj):
        m = obj.message
        return format_html(
            '<div class="text-xs text-base-500">{} at {}</div>'
            '<pre class="text-sm" style="white-space:pre-wrap;overflow-wrap:anywhere">{}</pre>',
            _sender_words(m.sender_label, m.sender_msisdn),
            nairobi(m.sent_at),
            m.text,
        )

    @display(description="read from it")
    def display_parsed(self, obj):
        rows = [
            ("M-Pesa code", obj.code or "(unreadable: read the message)"),
            (
                "Sender",
                customer_link(obj.sender_msisdn, phone_display(obj.sender_msisdn))
                if obj.sender_msisdn
                else "unknown",
            ),
            ("Load on", customer_link(obj.recipient_msisdn, phone_display(obj.recipient_msisdn))),
            ("Amount in pasted SMS", money(obj.claimed_amount)),
            ("Paid to (pasted SMS)", self._payee(obj)),
        ]
        return render_to_string(f"{TEMPLATES}/parsed.html", {"rows": rows})

    @staticmethod
    def _payee(obj):
        if not obj.claimed_merchant:
            return "—"
        if other_payee_problem(obj):
            return format_html(
                '<span class="text-red-600 font-semibold" data-testid="other-payee">{} (not our till)</span>',
                obj.claimed_merchant,
            )
        return obj.claimed_merchant

    @display(description="explanation")
    def display_explanation(self, obj):
        explanation = obj.explanation or {}
        signals = explanation.get("signals") or []
        signals = [
            {
                **s,
                "label": signal_label(s["name"]),
                "verdict": RESULT_LABELS.get(s["result"], s["result"]),
                "colour": SIGNAL_COLOURS.get(s["result"], ""),
            }
            for s in signals
        ]
        summary = explanation.get("summary") or "Not evaluated yet."
        return render_to_string(f"{TEMPLATES}/explanation.html", {"summary": summary, "signals": signals})

    @display(description="receipts")
    def display_candidates(self, obj):
        receipts = selectors.claim_candidate_receipts(obj)
        if not receipts:
            return "No till receipt with this code or a look-alike yet."
        rows = [
            {
                "code": r.code,
                "amount": money(r.amount),
                "paid": nairobi(r.paid_at),
                "payer": f"{r.payer_name} {phone_display(r.payer_masked, empty='')}".strip() or "—",
                "state": "used by an order" if r.order_id else "unmatched",
            }
            for r in receipts
        ]
        return render_to_string(f"{TEMPLATES}/candidates.html", {"rows": rows})

    @display(description="WhatsApp reply")
    def display_reply(self, obj):
        text = replies.whatsapp_reply(obj)
        # Chat exports often carry only a contact name: no number, no WhatsApp link (Copy still works).
        link = replies.whatsapp_link(obj.sender_msisdn, text)
        return render_to_string(f"{TEMPLATES}/reply.html", {"text": text, "whatsapp_url": link})

    @display(description="code", ordering="code")
    def display_code(self, obj):
        return obj.code or "(unreadable)"

    @display(description="corrections")
    def display_superseded(self, obj):
        """The claim that replaced this one, or those this one replaced: both ways, linked."""
        links = []
        if obj.superseded_by_id:
            links.append(("Superseded by", obj.superseded_by))
        links += [("Supersedes", c) for c in obj.supersedes.all()]
        if not links:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '{} <a class="text-primary-600" href="{}">claim #{} {}</a>',
            (
                (
                    label,
                    reverse("admin:reconciliation_claim_change", args=[c.pk]),
                    c.pk,
                    c.code or "(unreadable)",
                )
                for label, c in links
            ),
        )

    @display(description="order")
    def display_order(self, obj):
        if obj.order_id:
            url = reverse("admin:ledger_order_change", args=[obj.order_id])
            return format_html('<a class="text-primary-600" href="{}">{}</a>', url, obj.order.reference)
        paid_by = (obj.explanation or {}).get("paid_by") or {}
        if isinstance(paid_by.get("order_id"), int) and paid_by.get("order"):
            # The code already paid another order (an STK payment): link it, it is the answer.
            url = reverse("admin:ledger_order_change", args=[paid_by["order_id"]])
            return format_html(
                '<a class="text-primary-600" href="{}" data-testid="paid-by">{}</a> (already paid by STK)',
                url,
                paid_by["order"],
            )
        return "—"
