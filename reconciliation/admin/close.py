"""Matcher runs and the daily close (sign-off, reopen)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, nairobi
from console.kernel.confirm import confirm_page, confirmed
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.exceptions import DomainError
from reconciliation.admin.close_figures import amount_text, close_context, close_html
from reconciliation.admin.common import DiedFilter, form_page
from reconciliation.forms import CloseDayForm, ReopenDayForm
from reconciliation.models import (
    DayClose,
    ReconciliationRun,
    RunStatus,
)
from reconciliation.services import runs as run_services
from reconciliation.services.close import (
    after_close_entries,
    close_status,
    day_close,
    day_figures,
    day_reopen,
)

CLOSE_CONFIRM = "admin/reconciliation/close/confirm.html"
RUN_COLOURS = {
    RunStatus.RUNNING: "info",
    "died": "danger",
    RunStatus.DONE: "success",
    RunStatus.FAILED: "danger",
    RunStatus.ABANDONED: "warning",
}


class ReconciliationRunAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "__str__",
        "display_started",
        "trigger",
        "display_status",
        "display_duration",
        "display_counts",
        "error",
    ]
    list_filter = ["trigger", "status", DiedFilter, ("started_at", NairobiRangeDateTimeFilter)]
    list_filter_submit = True
    empty_message = "No matcher runs yet. Run the matcher from the claims queue, or start the worker."
    paginator = InfinitePaginator
    show_full_result_count = False
    readonly_fields = [
        "started_at",
        "finished_at",
        "display_status",
        "display_heartbeat",
        "trigger",
        "counts",
        "error",
    ]
    exclude = ["status", "heartbeat_at"]
    actions_detail = ["close_abandoned"]

    def get_actions_detail(self, request, object_id):
        # Only a run that died can be closed by hand; a live one finishes (or fails) by itself.
        actions = super().get_actions_detail(request, object_id)
        run = ReconciliationRun.objects.filter(pk=object_id).first() if object_id else None
        if run is None or not run.has_died():
            actions = [a for a in actions if not a.action_name.endswith("_close_abandoned")]
        return actions

    @display(description="started (Nairobi)", ordering="started_at")
    def display_started(self, obj):
        return nairobi(obj.started_at)

    @display(description="status", label=RUN_COLOURS)
    def display_status(self, obj):
        if obj.has_died():
            return "died", "Died (no heartbeat)"
        return obj.status, obj.get_status_display()

    @display(description="last sign of life (Nairobi)")
    def display_heartbeat(self, obj):
        return nairobi(obj.heartbeat_at)

    @display(description="ms")
    def display_duration(self, obj):
        return obj.duration_ms

    @display(description="counts")
    def display_counts(self, obj):
        return ", ".join(f"{k}: {v}" for k, v in sorted((obj.counts or {}).items())) or "—"

    @action(
        description="Close as abandoned",
        icon="block",
        permissions=["reconciliation.run_reconciliation"],
        url_path="close-abandoned",
    )
    def close_abandoned(self, request, object_id):
        run = get_object_or_404(ReconciliationRun, pk=object_id)
        change_url = reverse("admin:reconciliation_reconciliationrun_change", args=[run.pk])
        if confirmed(request):
            try:
                run = run_services.run_close_abandoned(run_id=run.pk, user=request.user)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request, f"{run} closed as abandoned. The next matcher run retries its claims."
                )
            return redirect(change_url)
        if not run.has_died():
            messages.error(request, f"{run} has not died; only a run with no heartbeat can be closed.")
            return redirect(change_url)
        return confirm_page(
            self,
            request,
            title=f"Close {run} as abandoned",
            question=f"Close {run} as abandoned?",
            intro=(
                f"It started {nairobi(run.started_at)} and has shown no sign of life since "
                f"{nairobi(run.heartbeat_at or run.started_at)}. Nothing is undone: the matcher is "
                "idempotent, so the next run (every minute) retries whatever this one did not finish."
            ),
            confirm_label="Close as abandoned",
            cancel_url=change_url,
        )


class DayCloseAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "day",
        "display_balanced",
        "display_state",
        "closed_by",
        "display_closed",
        "display_figures",
    ]  # what came after close is on each day's page: a query per row would not scale
    list_select_related = ["closed_by"]
    list_filter = ["balanced"]
    list_filter_submit = True
    empty_message = "No day closed yet. Use “Close a day” to check a day's figures and sign it off."
    readonly_fields = [
        "day",
        "display_status_text",
        "display_state_text",
        "closed_by",
        "closed_at",
        "reopened_by",
        "reopened_at",
        "reopen_reason",
        "display_after_close",
        "display_detail",
    ]
    exclude = ["figures", "balanced"]
    actions_list = ["close_a_day"]
    actions_detail = ["reopen_day"]

    @display(description="state", label={"closed": "success", "reopened": "warning"})
    def display_state(self, obj):
        return ("reopened", "reopened") if obj.reopened_at else ("closed", "closed")

    @display(description="status")
    def display_status_text(self, obj):
        return close_status(obj.figures or {})

    @display(description="state")
    def display_state_text(self, obj):
        return "Reopened" if obj.reopened_at else "Closed"

    @display(description="after close")
    def display_after_close(self, obj):
        # Entries for this day booked after it closed: live, not the figures frozen at sign-off.
        late = list(after_close_entries(obj.day).values_list("number", "receipt_code")[:11])
        if not late:
            return "—"
        shown = ", ".join(f"{n} {r}".strip() for n, r in late[:10]) + (" …" if len(late) > 10 else "")
        return format_html("<span class='text-red-600'>booked after close</span>: {}", shown)

    @action(
        description="Reopen day",
        icon="lock_open",
        permissions=["reconciliation.add_dayclose"],
        url_path="reopen",
    )
    def reopen_day(self, request, object_id):
        close = get_object_or_404(DayClose, pk=object_id)
        detail_url = reverse("admin:reconciliation_dayclose_change", args=[close.pk])
        form = ReopenDayForm(request.POST if request.method == "POST" else None)
        if request.method != "POST" or not form.is_valid():
            return confirm_page(
                self,
                request,
                title=f"Reopen {close.day}",
                question=(
                    f"Reopen {close.day}? Entries for it will be booked on it again (not on the next open "
                    "day) until you close it again; its signed-off figures may change."
                ),
                form=form,
                confirm_label="Reopen the day",
                cancel_url=detail_url,
            )
        try:
            day_reopen(day=close.day, user=request.user, reason=form.cleaned_data["reason"])
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{close.day} reopened. Close it again from “Close a day” when done.")
        return redirect(detail_url)

    @display(description="status", label={"yes": "success", "no": "danger"})
    def display_balanced(self, obj):
        return ("yes" if obj.balanced else "no"), close_status(obj.figures or {})

    @display(description="closed (Nairobi)", ordering="closed_at")
    def display_closed(self, obj):
        return nairobi(obj.closed_at)

    @display(description="paid in / books / delivered (KES)")
    def display_figures(self, obj):
        f = obj.figures or {}
        figures = " / ".join(amount_text(f.get(k)) for k in ("paid_in", "books_till_movement", "delivered"))
        return format_html('<span class="tabular-nums whitespace-nowrap">{}</span>', figures)

    @display(description="figures")
    def display_detail(self, obj):
        return close_html(obj.figures or {})

    @action(
        description="Close a day",
        icon="event_available",
        permissions=["reconciliation.add_dayclose"],
        url_path="close-day",
    )
    def close_a_day(self, request):
        changelist = reverse("admin:reconciliation_dayclose_changelist")
        data = request.POST if request.method == "POST" else (request.GET if "day" in request.GET else None)
        form = CloseDayForm(data, initial={"day": timezone.localdate()})
        if data is None or not form.is_valid():
            return form_page(
                self,
                request,
                "Daily close",
                question="Which day?",
                form=form,
                confirm_label="Show the figures",
                cancel_url=changelist,
            )
        day = form.cleaned_data["day"]
        if request.method == "POST" and request.POST.get("sign_off"):
            try:
                close = day_close(day=day, user=request.user)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"{day} closed: {close_status(close.figures).lower()}.")
            return redirect(changelist)
        figures = day_figures(day=day)
        response = confirm_page(
            self,
            request,
            title=f"Daily close {day}",
            question="Sign off this day with these figures?",
            hidden={"day": day.isoformat(), "sign_off": "1"},
            confirm_label="Confirm and close the day",
            cancel_url=changelist,
        )
        response.template_name = CLOSE_CONFIRM
        response.context_data.update(close_context(figures))
        return response


admin.site.register(ReconciliationRun, ReconciliationRunAdmin)
admin.site.register(DayClose, DayCloseAdmin)
