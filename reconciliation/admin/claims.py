"""The agent's queue: claims oldest first, with the evidence and the decisions.

Thin: every button calls one service in reconciliation.services and reports the outcome.
Claims are never edited or deleted here; they change only through verify, reject and undo.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from catalog.selectors import ksh
from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin
from console.kernel.exceptions import DomainError
from console.kernel.links import customer_link
from console.kernel.uploads import UploadRefused, limit, read_limited
from reconciliation import selectors
from reconciliation.admin.common import AGE_COLOURS, age_text, local_phone, money, nairobi, page, right
from reconciliation.forms import PasteMessageForm, ReasonForm, VerifyClaimForm, WhatsAppUploadForm
from reconciliation.models import Claim, ClaimStatus, ImportStatus, WhatsAppImport, WhatsAppMessage
from reconciliation.services import claims as claim_services
from reconciliation.services import decisions, queue
from reconciliation.services.errors import ImportRefused
from reconciliation.services.exports import claims_export_lines
from reconciliation.services.matcher import claims_reconcile, other_payee_problem

# Wide evidence tables scroll inside their box on a phone instead of pushing the page sideways.
SCROLL_BOX = '<div style="max-width: calc(100vw - 3rem); overflow-x: auto">'
STATUS_COLOURS = {
    ClaimStatus.PENDING: "info",
    ClaimStatus.VERIFIED: "success",
    ClaimStatus.NEEDS_REVIEW: "warning",
    ClaimStatus.REJECTED: "danger",
}
SIGNAL_COLOURS = {"pass": "text-green-600", "fail": "text-red-600", "na": "text-base-400"}

VERIFIED = "Claim {code} verified: {bundle} for {recipient}, order {order}."
VERIFIED_LEFTOVER = "{left} unallocated stays on receipt {receipt}."
OFFER_TITLE = "Bundles receipt {receipt} ({amount}) pays for"
UNDERPAID = "None: every bundle costs more than {amount}, and an underpayment never verifies a bundle."
NO_RECEIPT_NO_BUNDLES = "Type a recorded till receipt to see the bundles it pays for."
REJECTED = "Claim {code} rejected."
UNDONE = "Verification of {code} undone; order {order} cancelled and the entry reversed."
PASTED = "Message kept: {claims} new claim(s). {kind_note}"
KIND_NOTES = {
    "claim": "",
    "chatter": "No M-Pesa code in it, so no claim.",
    "unparseable": "It talks about a payment but holds no valid M-Pesa code: ask the customer for the code.",
    "business": "It is from our own number, so no claim.",
}
MATCHER_RAN = "Matcher run #{pk}: {counts}."
TAKEN = "You hold claim {code} until {until}; nobody else will be given it."
TAKEN_OVER = "You took over claim {code} until {until}."
RELEASED = "Claim {code} released for the next agent."
CHAT_QUEUED = "{name} is being imported in the background; this page shows when it is done."
EMPTY_MESSAGE = "No claims waiting. Paste a WhatsApp message or upload a chat export."
# The detail buttons that change the claim's status, and the transition (CLAIM_TRANSITIONS) each makes.
BUTTON_TRANSITIONS = {"verify": "verify", "reject": "reject", "undo_verification": "undo_verification"}


class ClaimAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "display_age",
        "display_code",
        "display_sender",
        "display_recipient",
        "display_status",
        "display_reason",
        "display_amount",
        "display_bundle",
        "display_claimed",
        "display_held",
    ]
    list_display_links = ["display_code"]
    list_filter = ["status", "reason", ("claimed_at", RangeDateTimeFilter)]
    list_filter_submit = True
    ordering = ["claimed_at", "id"]
    search_help_text = "M-Pesa code or phone number (any form: 0712…, +254712…)"
    search_fields = ["code"]  # the real search is claim_search_filter (normalised, indexed)
    paginator = InfinitePaginator
    show_full_result_count = False
    list_per_page = 50
    fieldsets = [
        ("Claim", {"fields": ["display_status_detail", "display_message", "display_parsed"]}),
        ("Why", {"fields": ["display_explanation"]}),
        ("Candidate receipts", {"fields": ["display_candidates"]}),
        ("Reply to the customer", {"fields": ["display_reply"]}),
        (
            "Decision",
            {"fields": ["display_order", "display_superseded", "decided_by", "decided_at", "decision_note"]},
        ),
    ]
    readonly_fields = [
        "display_status_detail",
        "display_message",
        "display_parsed",
        "display_explanation",
        "display_candidates",
        "display_reply",
        "display_order",
        "display_superseded",
        "decided_by",
        "decided_at",
        "decision_note",
    ]
    actions_list = [
        "take_next",
        "find_anything",
        "paste_message",
        "upload_chat",
        "export_claims",
        "run_matcher",
    ]
    actions_detail = ["verify", "reject", "take_over", "release", "undo_verification"]
    change_form_before_template = "admin/reconciliation/claim/before_form.html"
    empty_message = EMPTY_MESSAGE

    def get_queryset(self, request):
        return selectors.claims_for_admin()

    def get_actions_detail(self, request, object_id):
        """Only the buttons whose transition (CLAIM_TRANSITIONS) applies to this claim; unfold
        asks per object here. The hold buttons go with deciding: shown while it can be verified."""
        actions = super().get_actions_detail(request, object_id)
        claim = Claim.objects.filter(pk=object_id).only("status", "held_by", "held_until").first()
        return [a for a in actions if claim and self._button_applies(a.action_name, claim, request.user)]

    @staticmethod
    def _button_applies(action_name: str, claim: Claim, user) -> bool:
        name = action_name.rsplit("_claim_", 1)[-1]
        if name in BUTTON_TRANSITIONS:
            return claim.can(BUTTON_TRANSITIONS[name])
        if name == "take_over":
            return claim.is_open and queue.held_by_other(claim, user)
        if name == "release":
            return claim.is_open and not queue.held_by_other(claim, user) and queue.hold_is_active(claim)
        return True

    def change_view(self, request, object_id, form_url="", extra_context=None):
        claim = Claim.objects.filter(pk=object_id).select_related("held_by").first()
        hold = None
        if claim and claim.is_open and queue.hold_is_active(claim):
            hold = {
                "who": claim.held_by.get_username(),
                "until": timezone.localtime(claim.held_until).strftime("%H:%M"),
                "mine": claim.held_by_id == request.user.pk,
            }
        # Shown whatever the status: an agent may still verify, but never without seeing it.
        other_payee = other_payee_problem(claim) if claim else None
        extra = {**(extra_context or {}), "hold": hold, "other_payee": other_payee}
        return super().change_view(request, object_id, form_url, extra)

    def get_search_results(self, request, queryset, search_term):
        q = selectors.claim_search_filter(search_term)
        return (queryset, False) if q is None else (queryset.filter(q), False)

    # ---- columns ---------------------------------------------------------------------------
    @display(description="age", ordering="claimed_at", label=AGE_COLOURS)
    def display_age(self, obj):
        if obj.status in (ClaimStatus.VERIFIED, ClaimStatus.REJECTED):
            return "done", obj.get_status_display().lower()
        return age_text(obj.claimed_at)

    @display(description="sender", ordering="sender_msisdn")
    def display_sender(self, obj):
        label = obj.message.sender_label
        phone = (
            customer_link(obj.sender_msisdn, local_phone(obj.sender_msisdn))
            if obj.sender_msisdn
            else "unknown"
        )
        if label and label != obj.sender_msisdn and not label.lstrip("+").replace(" ", "").isdigit():
            return format_html("{}<br>{}", label, phone)
        return phone

    @display(description="recipient", ordering="recipient_msisdn")
    def display_recipient(self, obj):
        return customer_link(obj.recipient_msisdn, local_phone(obj.recipient_msisdn))

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
            m.sender_label or m.sender_msisdn,
            nairobi(m.sent_at),
            m.text,
        )

    @display(description="read from it")
    def display_parsed(self, obj):
        rows = [
            ("M-Pesa code", obj.code or "(unreadable: read the message)"),
            (
                "Sender",
                customer_link(obj.sender_msisdn, local_phone(obj.sender_msisdn))
                if obj.sender_msisdn
                else "unknown",
            ),
            ("Load on", customer_link(obj.recipient_msisdn, local_phone(obj.recipient_msisdn))),
            ("Amount in pasted SMS", money(obj.claimed_amount)),
            ("Paid to (pasted SMS)", self._payee(obj)),
        ]
        return format_html(
            '<table class="text-sm">{}</table>',
            format_html_join("", '<tr><td class="pr-4 text-base-500">{}</td><td>{}</td></tr>', rows),
        )

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
        rows = format_html_join(
            "",
            '<tr><td class="pr-4 font-mono text-xs break-all">{}</td>'
            '<td class="pr-4 font-semibold {}">{}</td><td>{}</td></tr>',
            ((s["name"], SIGNAL_COLOURS.get(s["result"], ""), s["result"], s["detail"]) for s in signals),
        )
        return format_html(
            '<p class="mb-2" data-testid="explanation-summary">{}</p>'
            + SCROLL_BOX
            + '<table class="text-sm">{}</table></div>',
            explanation.get("summary") or "Not evaluated yet.",
            rows,
        )

    @display(description="receipts")
    def display_candidates(self, obj):
        receipts = selectors.claim_candidate_receipts(obj)
        if not receipts:
            return "No till receipt with this code or a look-alike yet."
        rows = format_html_join(
            "",
            "<tr><td class='pr-4 font-mono'>{}</td><td class='pr-4 text-right'>{}</td>"
            "<td class='pr-4'>{}</td>"
            "<td class='pr-4'>{}</td><td>{}</td></tr>",
            (
                (
                    r.code,
                    money(r.amount),
                    nairobi(r.paid_at),
                    f"{r.payer_name} {r.payer_masked}".strip() or "—",
                    "used by an order" if r.order_id else "unmatched",
                )
                for r in receipts
            ),
        )
        return format_html(
            SCROLL_BOX + '<table class="text-sm">{}</table></div>',
            rows,
        )

    @display(description="WhatsApp reply")
    def display_reply(self, obj):
        text = decisions.whatsapp_reply(obj)
        return format_html(
            '<textarea readonly rows="3" class="w-full max-w-2xl border rounded p-2 text-sm" '
            'data-testid="reply-text" data-select-on-click>{}</textarea>'
            '<button type="button" class="mt-1 text-primary-600 text-sm" data-copy '
            'data-copied-label="Copied reply">Copy reply</button>',
            text,
        )

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

    # ---- decisions -------------------------------------------------------------------------
    def _claim(self, object_id) -> Claim:
        return get_object_or_404(selectors.claims_for_admin(), pk=object_id)

    def _change_url(self, claim):
        return reverse("admin:reconciliation_claim_change", args=[claim.pk])

    def _receipts_table(self, claim):
        receipts = selectors.claim_candidate_receipts(claim)
        return {
            "title": "Candidate receipts",
            "headers": ["Receipt", "Amount (KES)", "Paid (Nairobi)", "Payer", "State"],
            "rows": [
                [
                    r.code,
                    money(r.amount),
                    nairobi(r.paid_at),
                    f"{r.payer_name} {r.payer_masked}".strip() or "—",
                    "used" if r.order_id else "unmatched",
                ]
                for r in receipts
            ]
            or [["—", "", "", "No receipt with this code or a look-alike yet", ""]],
        }

    def _offer_table(self, receipt, offer):
        """The bundles the receipt pays for, and what each would leave unallocated on it."""
        if receipt is None:
            return {"title": "Bundles", "headers": ["Bundle"], "rows": [[NO_RECEIPT_NO_BUNDLES]]}
        rows = [
            [
                bundle.name,
                money(price),
                f"{ksh(receipt.amount - price)} unallocated" if price < receipt.amount else "—",
            ]
            for bundle, price in offer
        ]
        return {
            "title": OFFER_TITLE.format(receipt=receipt.code, amount=ksh(receipt.amount)),
            "headers": ["Bundle", "Price when paid (KES)", "Left on the receipt"],
            "rows": rows or [[UNDERPAID.format(amount=ksh(receipt.amount)), "", ""]],
        }

    @action(
        description="Verify", icon="verified", permissions=["reconciliation.verify_claim"], url_path="verify"
    )
    def verify(self, request, object_id):
        claim = self._claim(object_id)
        change_url = self._change_url(claim)
        if not claim.can("verify"):
            messages.error(
                request, f"Only a claim waiting for a decision can be verified; this one is {claim.status}."
            )
            return redirect(change_url)
        if queue.held_by_other(claim, request.user):
            messages.error(request, queue.hold_message(claim))
            return redirect(change_url)
        suggested = claim.receipt or claim.suggested_receipt
        if suggested is None:
            exact = selectors.claim_candidate_receipts(claim, limit=1)
            suggested = exact[0] if exact else None
        initial = {
            "receipt_code": suggested.code if suggested else claim.code,
            "recipient": claim.recipient_msisdn,
        }
        # Offer the bundles of the receipt being verified: the one posted, else the suggestion.
        typed = request.POST.get("receipt_code") if request.method == "POST" else initial["receipt_code"]
        offered_receipt, offer = decisions.verify_offer(typed)
        form = VerifyClaimForm(
            request.POST or None,
            initial=initial,
            offer=offer,
            amount=offered_receipt.amount if offered_receipt else None,
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                claim = decisions.claim_verify(
                    claim_id=claim.pk,
                    receipt_code=data["receipt_code"],
                    amount=data["amount"],
                    bundle_id=data["bundle"].pk if data["bundle"] else None,
                    recipient=data["recipient"],
                    user=request.user,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                text = VERIFIED.format(
                    code=claim.code,
                    bundle=claim.bundle.name,
                    recipient=local_phone(claim.recipient_msisdn),
                    order=claim.order.reference,
                )
                left = claim.receipt.amount - claim.order.price
                if left > 0:
                    text += " " + VERIFIED_LEFTOVER.format(left=ksh(left), receipt=claim.receipt.code)
                messages.success(request, text)
                return redirect(change_url)
        summary, warning = (claim.explanation or {}).get("summary", ""), other_payee_problem(claim)
        return page(
            self,
            request,
            f"Verify claim {claim.code}",
            intro="" if summary == warning else summary,
            warning=warning,
            message_text=claim.message.text,
            tables=[self._receipts_table(claim), self._offer_table(offered_receipt, offer)],
            question="Pick the receipt and re-type its amount to confirm",
            form=form,
            confirm_label="Verify and create the order",
            cancel_url=change_url,
        )

    @action(
        description="Reject", icon="block", permissions=["reconciliation.reject_claim"], url_path="reject"
    )
    def reject(self, request, object_id):
        claim = self._claim(object_id)
        change_url = self._change_url(claim)
        if queue.held_by_other(claim, request.user):
            messages.error(request, queue.hold_message(claim))
            return redirect(change_url)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                decisions.claim_reject(
                    claim_id=claim.pk, reason=form.cleaned_data["reason"], user=request.user
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, REJECTED.format(code=claim.code))
            return redirect(change_url)
        return page(
            self,
            request,
            f"Reject claim {claim.code}",
            message_text=claim.message.text,
            question="Why is this claim rejected?",
            form=form,
            confirm_label="Reject claim",
            confirm_variant="danger",
            cancel_url=change_url,
        )

    @action(
        description="Undo verification",
        icon="undo",
        permissions=["reconciliation.undo_verification"],
        url_path="undo",
    )
    def undo_verification(self, request, object_id):
        claim = self._claim(object_id)
        change_url = self._change_url(claim)
        if not claim.can("undo_verification"):
            messages.error(request, "Only a verified claim can be undone.")
            return redirect(change_url)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            order = claim.order.reference
            try:
                decisions.claim_verification_undo(
                    claim_id=claim.pk, reason=form.cleaned_data["reason"], user=request.user
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, UNDONE.format(code=claim.code, order=order))
            return redirect(change_url)
        return page(
            self,
            request,
            f"Undo verification of {claim.code}",
            intro=(
                f"Order {claim.order.reference} will be cancelled, receipt {claim.receipt.code} goes back to "
                "suspense and the claim-verified journal entry is reversed."
            ),
            question="Why undo this verification?",
            form=form,
            confirm_label="Undo verification",
            confirm_variant="danger",
            cancel_url=change_url,
        )

    # ---- holds (the work queue) ------------------------------------------------------------
    @action(
        description="Take next claim",
        icon="front_hand",
        permissions=["reconciliation.verify_claim"],
        url_path="take-next",
    )
    def take_next(self, request):
        # Holding a claim moves no money and expires on its own, but it is still a change: a GET
        # only asks (a link on another site must not take claims in an agent's name).
        if request.method != "POST":
            return page(
                self,
                request,
                "Take the next claim",
                intro=f"The claim that has waited longest is held for you for {queue.HOLD_MINUTES} minutes.",
                question="Take the next claim from the queue?",
                confirm_label="Take next claim",
                cancel_url=reverse("admin:reconciliation_claim_changelist"),
            )
        try:
            claim = queue.claim_take_next(user=request.user)
        except DomainError as exc:
            messages.info(request, exc.message)
            return redirect("admin:reconciliation_claim_changelist")
        until = timezone.localtime(claim.held_until).strftime("%H:%M")
        messages.success(request, TAKEN.format(code=claim.code, until=until))
        return redirect(self._change_url(claim))

    @action(
        description="Take over",
        icon="front_hand",
        permissions=["reconciliation.verify_claim"],
        url_path="take-over",
    )
    def take_over(self, request, object_id):
        claim = self._claim(object_id)
        change_url = self._change_url(claim)
        if request.method == "POST":
            try:
                claim = queue.claim_take_over(claim_id=claim.pk, user=request.user)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                until = timezone.localtime(claim.held_until).strftime("%H:%M")
                messages.success(request, TAKEN_OVER.format(code=claim.code, until=until))
            return redirect(change_url)
        holder = queue.hold_message(claim) if queue.hold_is_active(claim) else "Nobody holds it now."
        return page(
            self,
            request,
            f"Take over claim {claim.code}",
            intro=f"{holder} Tell them before you take it: they may be half-way through a decision.",
            message_text=claim.message.text,
            question=f"Hold claim {claim.code} yourself for the next {queue.HOLD_MINUTES} minutes?",
            confirm_label="Take over",
            cancel_url=change_url,
        )

    @action(
        description="Release",
        icon="back_hand",
        permissions=["reconciliation.verify_claim"],
        url_path="release",
    )
    def release(self, request, object_id):
        claim = self._claim(object_id)
        if request.method != "POST":
            return page(
                self,
                request,
                f"Release claim {claim.code}",
                intro="Another agent can then take it from the queue.",
                question=f"Release your hold on claim {claim.code}?",
                confirm_label="Release",
                cancel_url=self._change_url(claim),
            )
        try:
            queue.claim_release(claim_id=claim.pk, user=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, RELEASED.format(code=claim.code))
        return redirect("admin:reconciliation_claim_changelist")

    @action(
        description="Find anything", icon="search", permissions=["reconciliation.view_claim"], url_path="find"
    )
    def find_anything(self, request):
        return redirect("console_find")

    # ---- list buttons ----------------------------------------------------------------------
    @action(
        description="Paste a message",
        icon="content_paste",
        permissions=["reconciliation.add_whatsappmessage"],
        url_path="paste",
    )
    def paste_message(self, request):
        return paste_message_view(self, request)

    @action(
        description="Upload chat export",
        icon="upload_file",
        permissions=["reconciliation.add_whatsappimport"],
        url_path="upload-chat",
    )
    def upload_chat(self, request):
        return upload_chat_view(self, request)

    @action(
        description="Export CSV",
        icon="download",
        permissions=["reconciliation.view_claim"],
        url_path="export",
    )
    def export_claims(self, request):
        response = StreamingHttpResponse(claims_export_lines(), content_type="text/csv")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="claims-{stamp}.csv"'
        return response

    @action(
        description="Run matcher now",
        icon="sync",
        permissions=["reconciliation.run_reconciliation"],
        url_path="run-matcher",
    )
    def run_matcher(self, request):
        if request.method != "POST":
            return page(
                self,
                request,
                "Run the matcher now",
                intro="The matcher also runs every minute and after every import.",
                question="Match every open claim against the till receipts now?",
                confirm_label="Run matcher",
                cancel_url=reverse("admin:reconciliation_claim_changelist"),
            )
        run = claims_reconcile(trigger="manual")
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(run.counts.items())) or "nothing to do"
        messages.success(request, MATCHER_RAN.format(pk=run.pk, counts=counts))
        return redirect("admin:reconciliation_claim_changelist")


def paste_message_view(model_admin, request):
    form = PasteMessageForm(request.POST or None)
    changelist = reverse("admin:reconciliation_claim_changelist")
    if request.method == "POST" and form.is_valid():
        try:
            result = claim_services.message_paste(
                sender=form.cleaned_data["sender"], text=form.cleaned_data["text"], user=request.user
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                PASTED.format(claims=result["claims_new"], kind_note=KIND_NOTES.get(result["kind"], "")),
            )
            claims = result["claims"]
            if len(claims) == 1:
                return redirect("admin:reconciliation_claim_change", claims[0].pk)
            return redirect(changelist)
    return page(
        model_admin,
        request,
        "Paste a customer's message",
        intro="Paste the WhatsApp message as the customer wrote it; every M-Pesa code in it becomes a claim.",
        question="Message",
        form=form,
        confirm_label="Save and match",
        cancel_url=changelist,
    )


def upload_chat_view(model_admin, request):
    form = WhatsAppUploadForm(request.POST or None, request.FILES or None)
    changelist = reverse("admin:reconciliation_claim_changelist")
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            data = read_limited(upload, limit("UPLOAD_CHAT_MAX_BYTES"), what="chat export")
            # A usual export imports at once (its errors on this form); a big one in the worker.
            inline = len(data) <= settings.CHAT_IMPORT_INLINE_MAX_BYTES
            service = claim_services.whatsapp_import if inline else claim_services.whatsapp_import_queue
            imp = service(
                data=data,
                filename=upload.name,
                business_number=form.cleaned_data["business_number"] or None,
                user=request.user,
            )
        except (ImportRefused, UploadRefused) as exc:
            form.add_error("file", exc.message)
        else:
            if imp.status != ImportStatus.DONE:
                messages.info(request, CHAT_QUEUED.format(name=imp.original_name))
                return redirect(reverse("admin:reconciliation_whatsappimport_change", args=[imp.pk]))
            c = imp.counts
            messages.success(
                request,
                f"{c['messages']} messages ({c['new_messages']} new): {c['claims_new']} new claims, "
                f"{c['unparseable']} unparseable, {c['chatter']} chatter, "
                f"{c['system'] + c['media']} system/media, "
                f"{c['from_business']} from us.",
            )
            return redirect(changelist)
    return page(
        model_admin,
        request,
        "Upload a WhatsApp chat export",
        intro="In WhatsApp: chat → ⋮ → More → Export chat → Without media. Upload the .txt or .zip.",
        question="Chat export",
        form=form,
        confirm_label="Import and match",
        cancel_url=changelist,
    )


class WhatsAppMessageAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "display_sent",
        "sender_label",
        "sender_msisdn",
        "display_text",
        "display_claims",
        "kind",
    ]
    list_filter = ["kind", "is_from_business", ("sent_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["sender_msisdn"]
    paginator = InfinitePaginator
    show_full_result_count = False
    readonly_fields = [f.name for f in WhatsAppMessage._meta.fields]
    actions_list = ["paste_message"]

    empty_message = "No messages yet. Paste a WhatsApp message or upload a chat export."

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("chat_import").annotate(claim_count=Count("claims"))
        )

    @display(description="sent (Nairobi)", ordering="sent_at")
    def display_sent(self, obj):
        return nairobi(obj.sent_at)

    @display(description="text")
    def display_text(self, obj):
        return obj.text[:80] + ("…" if len(obj.text) > 80 else "")

    @display(description="claims", ordering="claim_count")
    def display_claims(self, obj):
        return obj.claim_count

    @action(
        description="Paste a message",
        icon="content_paste",
        permissions=["reconciliation.add_whatsappmessage"],
        url_path="paste",
    )
    def paste_message(self, request):
        return paste_message_view(self, request)


class WhatsAppImportAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["original_name", "display_uploaded", "uploaded_by", "status", "display_counts"]
    list_select_related = ["uploaded_by"]
    list_filter = ["status"]
    list_filter_submit = True
    empty_message = "No chat exports yet. Use “Upload chat export” with a WhatsApp export (.txt or .zip)."
    readonly_fields = [
        "original_name",
        "sha256",
        "uploaded_by",
        "uploaded_at",
        "status",
        "business_number",
        "business_name",
        "counts",
        "errors",
    ]
    exclude = ["file"]
    actions_list = ["upload_chat"]

    @display(description="uploaded (Nairobi)", ordering="uploaded_at")
    def display_uploaded(self, obj):
        return nairobi(obj.uploaded_at)

    @display(description="counts")
    def display_counts(self, obj):
        c = obj.counts or {}
        return (
            f"{c.get('messages', 0)} messages, {c.get('claims_new', 0)} new claims, "
            f"{c.get('unparseable', 0)} unparseable"
        )

    @action(
        description="Upload chat export",
        icon="upload_file",
        permissions=["reconciliation.add_whatsappimport"],
        url_path="upload-chat",
    )
    def upload_chat(self, request):
        return upload_chat_view(self, request)


admin.site.register(Claim, ClaimAdmin)
admin.site.register(WhatsAppMessage, WhatsAppMessageAdmin)
admin.site.register(WhatsAppImport, WhatsAppImportAdmin)
