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

from console.admin_base import ModelAdmin, ReadOnlyAdminMixin
from console.exceptions import DomainError
from reconciliation import selectors
from reconciliation.admin.common import AGE_COLOURS, age_text, money, nairobi, page, right
from reconciliation.forms import CloseDayForm, StatementUploadForm, TillSmsForm
from reconciliation.models import DayClose, ImportStatus, ReconciliationRun, StatementImport, TillReceipt
from reconciliation.services import receipts as receipt_services
from reconciliation.services.close import day_close, day_figures
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
        return [("no", "Unmatched (suspense)"), ("yes", "Matched to an order")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(order__isnull=True)
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
    ]
    list_filter = [MatchedFilter, "source", ("paid_at", RangeDateTimeFilter)]
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
        if obj.order_id:
            return "done", "matched"
        return age_text(obj.paid_at)

    @display(description="payer")
    def display_payer(self, obj):
        return f"{obj.payer_name} {obj.payer_masked}".strip() or "—"

    @display(description="order", label=MATCH_COLOURS)
    def display_matched(self, obj):
        return ("matched", obj.order.reference) if obj.order_id else ("unmatched", "unmatched")

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
        data = upload.read()
        try:
            preview = receipt_services.statement_preview(data=data, filename=upload.name)
            if not preview["errors"]:
                imp = receipt_services.statement_import_create(
                    data=data, filename=upload.name, user=request.user
                )
                return redirect("admin:reconciliation_statementimport_change", imp.pk)
        except ImportRefused as exc:
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


class StatementImportAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["original_name", "display_uploaded", "uploaded_by", "display_status", "display_progress"]
    list_select_related = ["uploaded_by"]
    list_filter = ["status", ("uploaded_at", RangeDateTimeFilter)]
    list_filter_submit = True
    empty_message = "No statements yet. Use “Upload statement” with the M-Pesa business statement export."
    readonly_fields = [
        "original_name",
        "display_state",
        "display_progress",
        "display_preview",
        "uploaded_by",
        "uploaded_at",
        "finished_at",
        "sha256",
        "errors",
    ]
    exclude = ["file", "counts", "status", "rows_total", "rows_done"]
    actions_list = ["upload_statement"]
    actions_detail = ["import_rows"]

    @display(description="uploaded (Nairobi)", ordering="uploaded_at")
    def display_uploaded(self, obj):
        return nairobi(obj.uploaded_at)

    @display(description="status", label=IMPORT_COLOURS)
    def display_status(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="status")
    def display_state(self, obj):
        return format_html('<strong data-testid="import-status">{}</strong>', obj.get_status_display())

    @display(description="progress")
    def display_progress(self, obj):
        if obj.status == ImportStatus.PREVIEW:
            return f"{obj.rows_total} receipt rows to import"
        percent = int(obj.rows_done * 100 / obj.rows_total) if obj.rows_total else 100
        return format_html(
            '<span data-testid="import-progress">{} / {} rows ({}%)</span>',
            obj.rows_done,
            obj.rows_total,
            percent,
        )

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
            try:
                imp = receipt_services.statement_import_start(import_id=imp.pk, user=request.user)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                if imp.status == ImportStatus.DONE:
                    messages.success(request, f"Imported: {imp.counts.get('new', 0)} new receipts.")
                else:
                    messages.info(request, "Importing in the background; this page shows the progress.")
            return redirect(change_url)
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


class ReconciliationRunAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["__str__", "display_started", "trigger", "display_duration", "display_counts", "error"]
    list_filter = ["trigger", ("started_at", RangeDateTimeFilter)]
    list_filter_submit = True
    empty_message = "No matcher runs yet. Run the matcher from the claims queue, or start the worker."
    paginator = InfinitePaginator
    show_full_result_count = False
    readonly_fields = ["started_at", "finished_at", "trigger", "counts", "error"]

    @display(description="started (Nairobi)", ordering="started_at")
    def display_started(self, obj):
        return nairobi(obj.started_at)

    @display(description="ms")
    def display_duration(self, obj):
        return obj.duration_ms

    @display(description="counts")
    def display_counts(self, obj):
        return ", ".join(f"{k}: {v}" for k, v in sorted((obj.counts or {}).items())) or "—"


class DayCloseAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["day", "display_balanced", "closed_by", "display_closed", "display_figures"]
    list_select_related = ["closed_by"]
    list_filter = ["balanced"]
    list_filter_submit = True
    empty_message = "No day closed yet. Use “Close a day” to check a day's figures and sign it off."
    readonly_fields = ["day", "balanced", "closed_by", "closed_at", "display_detail"]
    exclude = ["figures"]
    actions_list = ["close_a_day"]

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
