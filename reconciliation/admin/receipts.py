"""Till receipts (suspense), statement imports, matcher runs and the daily close."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from catalog.selectors import ksh
from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin
from console.kernel.exceptions import DomainError
from console.kernel.uploads import UploadRefused, limit, read_limited
from reconciliation import selectors
from reconciliation.admin.common import AGE_COLOURS, age_text, money, nairobi, page, right
from reconciliation.forms import CloseDayForm, ReopenDayForm, StatementUploadForm, TillSmsForm
from reconciliation.models import (
    DayClose,
    ImportStatus,
    ReconciliationRun,
    RunStatus,
    SettlementState,
    StatementImport,
    TillReceipt,
)
from reconciliation.services import receipts as receipt_services
from reconciliation.services import runs as run_services
from reconciliation.services.close import after_close_entries, day_close, day_figures, day_reopen
from reconciliation.services.errors import ImportRefused

IMPORT_COLOURS = {
    ImportStatus.PREVIEW: "info",
    ImportStatus.QUEUED: "warning",
    ImportStatus.RUNNING: "warning",
    ImportStatus.DONE: "success",
    ImportStatus.FAILED: "danger",
}
MATCH_COLOURS = {"matched": "success", "unmatched": "warning"}


class MatchedFilter(admin.SimpleListFilter):
    title = "matched"
    parameter_name = "matched"

    def lookups(self, request, model_admin):
        return [
            ("no", "Unmatched (suspense)"),
            ("yes", "Matched to an order"),
            ("partly", "Partly used (money left unallocated)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(order__isnull=True)
        if self.value() == "partly":
            return queryset.partly_used()
        if self.value() == "yes":
            return queryset.filter(order__isnull=False)
        return queryset


class TillReceiptAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "code",
        "display_amount",
        "display_paid",
        "display_age",
        "display_payer",
        "source",
        "display_matched",
        "display_unallocated",
    ]
    list_filter = [MatchedFilter, "source", "settlement", ("paid_at", RangeDateTimeFilter)]
    list_filter_submit = True
    empty_message = "No till receipts. Upload an M-Pesa statement or paste a till SMS."
    search_fields = ["code"]
    search_help_text = "Receipt code"
    paginator = InfinitePaginator
    show_full_result_count = False
    list_select_related = ["order"]
    readonly_fields = [
        "code",
        "amount",
        "paid_at",
        "payer_masked",
        "payer_name",
        "source",
        "statement_import",
        "order",
        "settlement",
        "settlement_note",
        "display_unallocated",
        "created_at",
        "display_raw",
    ]
    exclude = ["raw"]
    actions_list = ["paste_till_sms", "upload_statement"]

    def get_search_results(self, request, queryset, search_term):
        q = selectors.receipt_search_filter(search_term)
        return (queryset, False) if q is None else (queryset.filter(q), False)

    @display(description="amount (KES)", ordering="amount")
    def display_amount(self, obj):
        return right(money(obj.amount))

    @display(description="paid (Nairobi)", ordering="paid_at")
    def display_paid(self, obj):
        return nairobi(obj.paid_at)

    @display(description="age in suspense", label=AGE_COLOURS)
    def display_age(self, obj):
        if obj.settlement == SettlementState.REVIEW:
            return "red", "STK settlement: review"
        if obj.settlement:
            return "done", "STK settlement"
        if obj.order_id:
            return "done", "matched"
        return age_text(obj.paid_at)

    @display(description="payer")
    def display_payer(self, obj):
        return f"{obj.payer_name} {obj.payer_masked}".strip() or "—"

    @display(description="order", label=MATCH_COLOURS)
    def display_matched(self, obj):
        return ("matched", obj.order.reference) if obj.order_id else ("unmatched", "unmatched")

    @display(description="unallocated")
    def display_unallocated(self, obj):
        # What this receipt still holds in Unallocated receipts: all of it until it pays an order,
        # then whatever it paid beyond the order's price (the column sums to that account).
        if obj.order_id and obj.settlement:
            return "—"  # an STK payment's money: it sits in STK clearing, never in Unallocated
        left = obj.amount - obj.order.price if obj.order_id else obj.amount
        return f"{ksh(left)} unallocated" if left > 0 else "—"

    @display(description="as received")
    def display_raw(self, obj):
        return format_html('<pre class="whitespace-pre-wrap text-xs">{}</pre>', json.dumps(obj.raw, indent=2))

    @action(
        description="Paste till SMS",
        icon="sms",
        permissions=["reconciliation.import_statement"],
        url_path="paste-sms",
    )
    def paste_till_sms(self, request):
        form = TillSmsForm(request.POST or None)
        changelist = reverse("admin:reconciliation_tillreceipt_changelist")
        if request.method == "POST" and form.is_valid():
            try:
                counts = receipt_services.till_sms_import(text=form.cleaned_data["text"], user=request.user)
            except DomainError as exc:
                form.add_error("text", exc.message)
            else:
                messages.success(
                    request,
                    f"{counts['found']} till SMS read: {counts['new']} new, {counts['known']} already known.",
                )
                return redirect(changelist)
        return page(
            self,
            request,
            "Paste till SMS",
            intro="Merchant-side messages from the till phone become receipts (nothing is recorded twice).",
            question="Till SMS",
            form=form,
            confirm_label="Record receipts",
            cancel_url=changelist,
        )

    @action(
        description="Import statement",
        icon="upload_file",
        permissions=["reconciliation.import_statement"],
        url_path="upload-statement",
    )
    def upload_statement(self, request):
        return upload_statement_view(self, request)


def upload_statement_view(model_admin, request):
    form = StatementUploadForm(request.POST or None, request.FILES or None)
    cancel = reverse("admin:reconciliation_statementimport_changelist")
    tables = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            data = read_limited(upload, limit("UPLOAD_STATEMENT_MAX_BYTES"), what="statement file")
            preview = receipt_services.statement_preview(data=data, filename=upload.name)
            if not preview["errors"]:
                imp = receipt_services.statement_import_create(
                    data=data, filename=upload.name, user=request.user
                )
                return redirect("admin:reconciliation_statementimport_change", imp.pk)
        except (ImportRefused, UploadRefused) as exc:
            form.add_error("file", exc.message)
        else:
            form.add_error("file", f"{len(preview['errors'])} bad row(s): fix the file and upload it again.")
            tables.append(
                {
                    "title": "Rows with errors (nothing was saved)",
                    "headers": ["Row", "Column", "Problem"],
                    "rows": [[e["row"], e["column"], e["message"]] for e in preview["errors"][:200]],
                }
            )
    return page(
        model_admin,
        request,
        "Import an M-PESA statement",
        intro="Upload the Org portal export. You will see what it contains before anything is saved.",
        tables=tables,
        question="Statement file",
        form=form,
        confirm_label="Preview",
        cancel_url=cancel,
    )


class DiedFilter(admin.SimpleListFilter):
    """Jobs whose worker died: still marked running, no heartbeat for HEARTBEAT_STALE_SECONDS."""

    title = "worker"
    parameter_name = "worker"

    def lookups(self, request, model_admin):
        return [("died", "Died (no heartbeat)")]

    def queryset(self, request, queryset):
        if self.value() == "died":
            return queryset.died()
        return queryset


def stopped_text(obj) -> str:
    """Where a dead import stopped, as the operator needs it to decide whether to resume."""
    since = f"no heartbeat since {nairobi(obj.heartbeat_at)}" if obj.heartbeat_at else "no heartbeat recorded"
    return f"Stopped at {obj.rows_done:,} of {obj.rows_total:,} rows ({since})"


def _run_import(request, service, imp: StatementImport, *, done: str, queued: str):
    """Start or resume ``imp`` through ``service`` after the operator confirmed, and say how it went."""
    try:
        imp = service(import_id=imp.pk, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if imp.status == ImportStatus.DONE:
            messages.success(request, done.format(new=imp.counts.get("new", 0)))
        else:
            messages.info(request, queued)
    return redirect(reverse("admin:reconciliation_statementimport_change", args=[imp.pk]))


class StatementImportAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["original_name", "display_uploaded", "uploaded_by", "display_status", "display_progress"]
    list_select_related = ["uploaded_by"]
    list_filter = ["status", DiedFilter, ("uploaded_at", RangeDateTimeFilter)]
    list_filter_submit = True
    empty_message = "No statements yet. Use “Upload statement” with the M-Pesa business statement export."
    readonly_fields = [
        "original_name",
        "display_state",
        "display_progress",
        "display_preview",
        "uploaded_by",
        "uploaded_at",
        "display_heartbeat",
        "attempts",
        "finished_at",
        "sha256",
        "errors",
    ]
    exclude = ["file", "counts", "status", "rows_total", "rows_done", "lease_token", "heartbeat_at"]
    actions_list = ["upload_statement"]
    actions_detail = ["import_rows", "resume_import"]

    def get_actions_detail(self, request, object_id):
        # "Import" for a preview, "Resume" for an import whose worker died or that failed.
        actions = super().get_actions_detail(request, object_id)
        imp = StatementImport.objects.filter(pk=object_id).first() if object_id else None
        wanted = set()
        if imp is not None and imp.status == ImportStatus.PREVIEW:
            wanted.add("import_rows")
        if imp is not None and imp.is_resumable():
            wanted.add("resume_import")
        return [a for a in actions if a.action_name.rsplit("_statementimport_", 1)[-1] in wanted]

    @display(description="uploaded (Nairobi)", ordering="uploaded_at")
    def display_uploaded(self, obj):
        return nairobi(obj.uploaded_at)

    @display(description="status", label={**IMPORT_COLOURS, "dead": "danger"})
    def display_status(self, obj):
        if obj.is_dead():
            return "dead", "Stopped (worker died)"
        return obj.status, obj.get_status_display()

    @display(description="status")
    def display_state(self, obj):
        text = "Stopped (worker died)" if obj.is_dead() else obj.get_status_display()
        return format_html('<strong data-testid="import-status">{}</strong>', text)

    @display(description="progress")
    def display_progress(self, obj):
        if obj.status == ImportStatus.PREVIEW:
            return f"{obj.rows_total:,} receipt rows to import"
        if obj.is_dead():
            return format_html('<span data-testid="import-progress">{}</span>', stopped_text(obj))
        percent = int(obj.rows_done * 100 / obj.rows_total) if obj.rows_total else 100
        return format_html(
            '<span data-testid="import-progress">{} / {} rows ({}%)</span>',
            f"{obj.rows_done:,}",
            f"{obj.rows_total:,}",
            percent,
        )

    @display(description="last sign of life (Nairobi)")
    def display_heartbeat(self, obj):
        return nairobi(obj.heartbeat_at)

    @display(description="what the file holds")
    def display_preview(self, obj):
        c = obj.counts or {}
        skipped = c.get("skipped") or {}
        skipped_text = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(skipped.items())) or "none"
        return format_html(
            "<div>New receipts: <strong>{}</strong> (KES {})</div><div>Already known: {}</div>"
            "<div>Skipped rows: {}</div>",
            c.get("new", 0),
            c.get("new_amount", "0"),
            c.get("known", 0),
            skipped_text,
        )

    @action(
        description="Import statement",
        icon="upload_file",
        permissions=["reconciliation.import_statement"],
        url_path="upload-statement",
    )
    def upload_statement(self, request):
        return upload_statement_view(self, request)

    @action(
        description="Import these rows",
        icon="playlist_add_check",
        permissions=["reconciliation.import_statement"],
        url_path="import",
    )
    def import_rows(self, request, object_id):
        imp = get_object_or_404(StatementImport, pk=object_id)
        change_url = reverse("admin:reconciliation_statementimport_change", args=[imp.pk])
        if request.method == "POST" and request.POST.get("confirmed"):
            return _run_import(
                request,
                receipt_services.statement_import_start,
                imp,
                done="Imported: {new} new receipts.",
                queued="Importing in the background; this page shows the progress.",
            )
        c = imp.counts or {}
        return page(
            self,
            request,
            f"Import {imp.original_name}",
            question=f"Record {c.get('new', 0)} new till receipts (KES {c.get('new_amount', '0')})?",
            intro=f"{c.get('known', 0)} rows are already known and will be left alone.",
            confirm_label="Import",
            cancel_url=change_url,
        )

    @action(
        description="Resume import",
        icon="restart_alt",
        permissions=["reconciliation.import_statement"],
        url_path="resume",
    )
    def resume_import(self, request, object_id):
        imp = get_object_or_404(StatementImport, pk=object_id)
        change_url = reverse("admin:reconciliation_statementimport_change", args=[imp.pk])
        if request.method == "POST" and request.POST.get("confirmed"):
            return _run_import(
                request,
                receipt_services.statement_import_resume,
                imp,
                done="Imported: {new} new receipts in all.",
                queued="Resuming in the background; this page shows the progress.",
            )
        if not imp.is_resumable():
            messages.error(
                request, "This import has a live worker or is finished; there is nothing to resume."
            )
            return redirect(change_url)
        where = (
            stopped_text(imp) if imp.is_dead() else f"Failed at {imp.rows_done:,} of {imp.rows_total:,} rows"
        )
        return page(
            self,
            request,
            f"Resume {imp.original_name}",
            question=f"Resume the import from row {imp.rows_done + 1:,}?",
            intro=(
                f"{where}. The rows already imported are kept and skipped; every receipt and its "
                "journal entry is recorded exactly once."
            ),
            confirm_label="Resume import",
            cancel_url=change_url,
        )


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
    list_filter = ["trigger", "status", DiedFilter, ("started_at", RangeDateTimeFilter)]
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
        if request.method == "POST" and request.POST.get("confirmed"):
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
        return page(
            self,
            request,
            f"Close {run} as abandoned",
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
        "balanced",
        "display_state",
        "closed_by",
        "closed_at",
        "reopened_by",
        "reopened_at",
        "reopen_reason",
        "display_after_close",
        "display_detail",
    ]
    exclude = ["figures"]
    actions_list = ["close_a_day"]
    actions_detail = ["reopen_day"]

    @display(description="state", label={"closed": "success", "reopened": "warning"})
    def display_state(self, obj):
        return ("reopened", "reopened") if obj.reopened_at else ("closed", "closed")

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
            return page(
                self,
                request,
                f"Reopen {close.day}",
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

    @display(description="balanced", label={"yes": "success", "no": "danger"})
    def display_balanced(self, obj):
        return ("yes", "balanced") if obj.balanced else ("no", "differences")

    @display(description="closed (Nairobi)", ordering="closed_at")
    def display_closed(self, obj):
        return nairobi(obj.closed_at)

    @display(description="paid in / books / delivered")
    def display_figures(self, obj):
        f = obj.figures or {}
        return f"{f.get('paid_in')} / {f.get('books_till_movement')} / {f.get('delivered')}"

    @display(description="figures")
    def display_detail(self, obj):
        return format_html(
            '<pre class="whitespace-pre-wrap text-xs">{}</pre>', json.dumps(obj.figures, indent=2)
        )

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
            return page(
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
                messages.success(
                    request, f"{day} closed ({'balanced' if close.balanced else 'with differences'})."
                )
            return redirect(changelist)
        figures = day_figures(day=day)
        tables = [
            {
                "title": f"{day}: {'balanced' if figures['balanced'] else 'differences'}",
                "headers": ["Figure", "KES"],
                "rows": [
                    ["Statement / till paid in", f"{figures['paid_in']} ({figures['receipts']} receipts)"],
                    ["Books: M-Pesa till movement", figures["books_till_movement"]],
                    [
                        "Till bundles delivered",
                        f"{figures['delivered']} ({figures['orders_delivered']} orders)",
                    ],
                ],
            }
        ]
        return page(
            self,
            request,
            f"Daily close {day}",
            tables=tables,
            blocks=json.dumps(figures["differences"], indent=2) if figures["differences"] else "",
            blocks_title="Differences and the rows behind them",
            question="Sign off this day with these figures?",
            hidden={"day": day.isoformat(), "sign_off": "1"},
            confirm_label="Confirm and close the day",
            cancel_url=changelist,
        )


admin.site.register(TillReceipt, TillReceiptAdmin)
admin.site.register(StatementImport, StatementImportAdmin)
admin.site.register(ReconciliationRun, ReconciliationRunAdmin)
admin.site.register(DayClose, DayCloseAdmin)
