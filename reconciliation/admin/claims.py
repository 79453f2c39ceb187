"""The agent's queue: claims oldest first, with the evidence and the decisions.

Thin: every button calls one service in reconciliation.services and reports the outcome.
Claims are never edited or deleted here; they change only through verify, reject and undo.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from unfold.decorators import action
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, money, nairobi
from console.kernel.confirm import confirm_page
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.exceptions import DomainError
from console.kernel.money import ksh
from console.kernel.phones import phone_display
from reconciliation import selectors

# Wide evidence tables scroll inside their box on a phone instead of pushing the page sideways.
from reconciliation.admin.claim_columns import ClaimColumnsMixin
from reconciliation.admin.claim_queue import ClaimQueueFilter, ClaimQueueMixin, queue_ranked
from reconciliation.admin.common import confirm_with_evidence
from reconciliation.filters import claims_search
from reconciliation.forms import ReasonForm, RejectClaimForm, VerifyClaimForm
from reconciliation.models import Claim
from reconciliation.services import decisions, queue
from reconciliation.services.errors import CODE_USED_NO_VERIFY
from reconciliation.services.matcher import other_payee_problem

VERIFIED = "Claim {code} verified: {bundle} for {recipient}, order {order}."
VERIFIED_LEFTOVER = "{left} unallocated stays on receipt {receipt}."
OFFER_TITLE = "Bundles receipt {receipt} ({amount}) pays for"
UNDERPAID = "None: every bundle costs more than {amount}, and an underpayment never verifies a bundle."
NO_RECEIPT_NO_BUNDLES = "Type a recorded till receipt to see the bundles it pays for."
REJECTED = "Claim {code} rejected."
UNDONE = "Verification of {code} undone; order {order} cancelled and the entry reversed."
EMPTY_MESSAGE = "No claims waiting. Paste a WhatsApp message or upload a chat export."
# The detail buttons that change the claim's status, and the transition (CLAIM_TRANSITIONS) each makes.
BUTTON_TRANSITIONS = {"verify": "verify", "reject": "reject", "undo_verification": "undo_verification"}


class ClaimAdmin(ClaimColumnsMixin, ClaimQueueMixin, ReadOnlyAdminMixin, ModelAdmin):
    # What fits a 1366 px laptop beside the sidebar: "held by" must stay on screen.
    list_display = [
        "display_age",
        "display_code",
        "display_sender",
        "display_recipient",
        "display_status",
        "display_reason",
        "display_amount",
        "display_held",
    ]
    list_display_links = ["display_code"]
    list_filter = [ClaimQueueFilter, "reason", ("claimed_at", NairobiRangeDateTimeFilter)]
    list_filter_submit = True
    ordering = ["claimed_at", "id"]  # within the queue order of get_ordering
    search_help_text = "M-Pesa code or phone number (any form: 0712…, +254712…)"
    search_fields = ["code"]  # the real search is filters.ClaimFilter (normalised, indexed)
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
        return queue_ranked(selectors.claims_for_admin())

    def get_ordering(self, request):
        # Needs review first, then pending (ClaimQueueFilter's open queue), each oldest first.
        return ["queue_rank", *self.ordering]

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
        first_use = selectors.claim_code_first_use(claim) if claim else None
        extra = {**(extra_context or {}), "hold": hold, "other_payee": other_payee, "first_use": first_use}
        return super().change_view(request, object_id, form_url, extra)

    def get_search_results(self, request, queryset, search_term):
        return claims_search(queryset, search_term), False

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
                    f"{r.payer_name} {phone_display(r.payer_masked, empty='')}".strip() or "—",
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
            text = (
                CODE_USED_NO_VERIFY.format(code=claim.code)
                if claim.is_open
                else f"Only a claim waiting for a decision can be verified; this one is {claim.status}."
            )
            messages.error(request, text)
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
                    recipient=phone_display(claim.recipient_msisdn),
                    order=claim.order.reference,
                )
                left = claim.receipt.amount - claim.order.price
                if left > 0:
                    text += " " + VERIFIED_LEFTOVER.format(left=ksh(left), receipt=claim.receipt.code)
                messages.success(request, text)
                return redirect(change_url)
        summary, warning = (claim.explanation or {}).get("summary", ""), other_payee_problem(claim)
        return confirm_with_evidence(
            self,
            request,
            title=f"Verify claim {claim.code}",
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
        form = RejectClaimForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                decisions.claim_reject(
                    claim_id=claim.pk,
                    reason=form.cleaned_data["reason"],
                    reply_reason=form.cleaned_data["reply_reason"],
                    user=request.user,
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, REJECTED.format(code=claim.code))
            return redirect(change_url)
        return confirm_with_evidence(
            self,
            request,
            title=f"Reject claim {claim.code}",
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
        return confirm_page(
            self,
            request,
            title=f"Undo verification of {claim.code}",
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


admin.site.register(Claim, ClaimAdmin)
