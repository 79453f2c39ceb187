"""The claim queue's own buttons: holds (take next, take over, release) and the list buttons."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Case, IntegerField, Value, When
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from unfold.decorators import action

from console.kernel.confirm import confirm_page
from console.kernel.exceptions import DomainError
from reconciliation.admin.common import confirm_with_evidence
from reconciliation.admin.messages import MessageInActions
from reconciliation.models import ClaimStatus
from reconciliation.services import queue
from reconciliation.services.exports import claims_export_lines
from reconciliation.services.matcher import claims_reconcile

MATCHER_RAN = "Matcher run #{pk}: {counts}."
TAKEN_OVER = "You took over claim {code} until {until}."
RELEASED = "Claim {code} released for the next agent."


# The open queue: what an agent works through, needs review first, then pending, oldest first.
QUEUE_STATUSES = [ClaimStatus.NEEDS_REVIEW, ClaimStatus.PENDING]
OPEN_CHOICE, ALL_CHOICE = "open", "all"


def queue_ranked(queryset):
    """``queryset`` with ``queue_rank``: 0 needs review, 1 pending, 2 decided (the list's first key)."""
    ranks = [When(status=status, then=Value(rank)) for rank, status in enumerate(QUEUE_STATUSES)]
    return queryset.annotate(
        queue_rank=Case(*ranks, default=Value(len(QUEUE_STATUSES)), output_field=IntegerField())
    )


class ClaimQueueFilter(admin.SimpleListFilter):
    """The status filter: the open queue unless another status (or "All") is picked. Keeps the
    ``status__exact`` parameter, so the dashboard's links to one status still work."""

    title = "status"
    parameter_name = "status__exact"

    def lookups(self, request, model_admin):
        return [
            (OPEN_CHOICE, "Open: needs review, then pending"),
            *ClaimStatus.choices,
            (ALL_CHOICE, "All"),
        ]

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        # What unfold's filter form keeps as a hidden field, so submitting another filter (a date
        # range, a reason) stays on the status picked.
        self.lookup_kwarg = self.parameter_name
        picked = super().value()
        self.lookup_val = [picked] if picked else []

    def value(self):
        return super().value() or OPEN_CHOICE

    def choices(self, changelist):
        # No "All" that clears the parameter: cleared means the open queue, so "All" is a choice.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string(
                    {self.parameter_name: lookup}, [] if lookup != OPEN_CHOICE else [self.parameter_name]
                ),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == OPEN_CHOICE:
            return queryset.filter(status__in=QUEUE_STATUSES)
        if value in ClaimStatus.values:
            return queryset.filter(status=value)
        return queryset


class ClaimQueueMixin(MessageInActions):
    """The buttons of ClaimAdmin that do not decide a claim."""

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
            return confirm_page(
                self,
                request,
                title="Take the next claim",
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
        # No message: the claim page's hold banner says "You hold this claim until …" once.
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
        return confirm_with_evidence(
            self,
            request,
            title=f"Take over claim {claim.code}",
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
            return confirm_page(
                self,
                request,
                title=f"Release claim {claim.code}",
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
            return confirm_page(
                self,
                request,
                title="Run the matcher now",
                intro="The matcher also runs every minute and after every import.",
                question="Match every open claim against the till receipts now?",
                confirm_label="Run matcher",
                cancel_url=reverse("admin:reconciliation_claim_changelist"),
            )
        run = claims_reconcile(trigger="manual")
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(run.counts.items())) or "nothing to do"
        messages.success(request, MATCHER_RAN.format(pk=run.pk, counts=counts))
        return redirect("admin:reconciliation_claim_changelist")
