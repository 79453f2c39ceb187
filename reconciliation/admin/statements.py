"""Statement imports: upload, preview, import and resume after a worker died."""

from __future__ import annotations

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html
from unfold.decorators import action, display

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, nairobi
from console.kernel.confirm import confirm_page, confirmed
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.exceptions import DomainError
from console.kernel.money import money
from console.kernel.tables import figures_table
from console.kernel.uploads import UploadRefused, limit, read_limited
from reconciliation.admin.common import DiedFilter, form_page
from reconciliation.forms import StatementUploadForm
from reconciliation.models import (
    ImportStatus,
    StatementImport,
)
from reconciliation.parsers import StatementFormatError
from reconciliation.services import receipts as receipt_services
from reconciliation.services.errors import ImportRefused
from reconciliation.services.statements import statement_rows

IMPORT_COLOURS = {
    ImportStatus.PREVIEW: "info",
    ImportStatus.QUEUED: "warning",
    ImportStatus.RUNNING: "warning",
    ImportStatus.DONE: "success",
    ImportStatus.FAILED: "danger",
}


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
    return form_page(
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


IMPORT_CONFIRM = "admin/reconciliation/statementimport/confirm.html"
FILE_UNREADABLE = "This statement's file cannot be read as a statement any more: upload the file again."
SECTION_TITLES = {
    "to_add": "Rows that will be added",
    "added": "Rows this import added",
    "skipped": "Rows skipped",
}


def _sections(imp: StatementImport):
    try:
        return statement_rows(imp=imp)
    except (OSError, ValueError, StatementFormatError):
        return None


def _receipt_link(row) -> str:
    if not row.get("receipt_id"):
        return row["code"] or "—"
    url = reverse("admin:reconciliation_tillreceipt_change", args=[row["receipt_id"]])
    return format_html(
        '<a class="text-primary-600 dark:text-primary-500 underline" href="{}">{}</a>', url, row["code"]
    )


def _tables(sections) -> list[dict]:
    """One table per section: the first ROWS_SHOWN rows, with the full count and sum in the title."""
    tables = []
    for key, section in sections.items():
        skipped = key == "skipped"
        headers = ["Row", "Receipt", "Time (Nairobi)", "KES", *(["Why"] if skipped else [])]
        rows = [
            [r["row"], _receipt_link(r), nairobi(r["at"]), r["amount"], *([r["why"]] if skipped else [])]
            for r in section.rows
        ]
        shown = f", first {len(rows):,} shown" if section.count > len(rows) else ""
        total = "" if skipped else f", KES {money(section.amount)}"
        title = f"{SECTION_TITLES[key]}: {section.count:,}{total}{shown}"
        tables.append(
            figures_table(headers, rows, counts=(0,), amounts=(3,), title=title, testid=f"rows-{key}")
        )
    return tables


class StatementImportAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["original_name", "display_uploaded", "uploaded_by", "display_status", "display_progress"]
    list_select_related = ["uploaded_by"]
    list_filter = ["status", DiedFilter, ("uploaded_at", NairobiRangeDateTimeFilter)]
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
        "display_sha256",
        "display_errors",
    ]
    exclude = [
        "file",
        "counts",
        "status",
        "rows_total",
        "rows_done",
        "lease_token",
        "heartbeat_at",
        "sha256",
        "errors",
    ]
    actions_list = ["upload_statement"]
    actions_detail = ["import_rows", "resume_import"]
    change_form_after_template = "admin/reconciliation/statementimport/rows.html"

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

    @display(description="file fingerprint (SHA-256)")
    def display_sha256(self, obj):
        # One long word: it wraps rather than pushing a phone's page sideways.
        return format_html('<span class="break-words" style="overflow-wrap: anywhere">{}</span>', obj.sha256)

    @display(description="errors")
    def display_errors(self, obj):
        return "; ".join(str(e.get("message", e)) for e in obj.errors or []) or "None"

    @display(description="last sign of life (Nairobi)")
    def display_heartbeat(self, obj):
        return nairobi(obj.heartbeat_at)

    @display(description="what the file holds")
    def display_preview(self, obj):
        sections = _sections(obj)
        if sections is None:
            return FILE_UNREADABLE
        added = sections.get("added") or sections.get("to_add")
        verb = "Added" if "added" in sections else "To add"
        return format_html(
            '<span data-testid="import-summary">{}: <strong>{}</strong> receipt{} (KES {})'
            " · skipped: {} row{}</span>",
            verb,
            f"{added.count:,}",
            pluralize(added.count),
            money(added.amount),
            f"{sections['skipped'].count:,}",
            pluralize(sections["skipped"].count),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        imp = StatementImport.objects.filter(pk=object_id).first()
        sections = _sections(imp) if imp is not None else None
        extra = {**(extra_context or {}), "statement_tables": _tables(sections) if sections else []}
        return super().change_view(request, object_id, form_url, extra_context=extra)

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
        if confirmed(request):
            return _run_import(
                request,
                receipt_services.statement_import_start,
                imp,
                done="Imported: {new} new receipts.",
                queued="Importing in the background; this page shows the progress.",
            )
        if imp.status != ImportStatus.PREVIEW:
            messages.info(request, "This statement is already imported; its rows are listed below.")
            return redirect(change_url)
        sections = _sections(imp)
        if sections is None:
            messages.error(request, FILE_UNREADABLE)
            return redirect(change_url)
        to_add, skipped = sections["to_add"], sections["skipped"]
        receipts = f"{to_add.count:,} new till receipt{pluralize(to_add.count)}"
        response = confirm_page(
            self,
            request,
            title=f"Import {imp.original_name}",
            question=f"Record {receipts} (KES {money(to_add.amount)})?",
            intro=f"{skipped.count:,} row{pluralize(skipped.count)} will be left alone; the table says why.",
            confirm_label="Import",
            cancel_url=change_url,
        )
        response.template_name = IMPORT_CONFIRM
        response.context_data["statement_tables"] = _tables(sections)
        return response

    @action(
        description="Resume import",
        icon="restart_alt",
        permissions=["reconciliation.import_statement"],
        url_path="resume",
    )
    def resume_import(self, request, object_id):
        imp = get_object_or_404(StatementImport, pk=object_id)
        change_url = reverse("admin:reconciliation_statementimport_change", args=[imp.pk])
        if confirmed(request):
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
        return confirm_page(
            self,
            request,
            title=f"Resume {imp.original_name}",
            question=f"Resume the import from row {imp.rows_done + 1:,}?",
            intro=(
                f"{where}. The rows already imported are kept and skipped; every receipt and its "
                "journal entry is recorded exactly once."
            ),
            confirm_label="Resume import",
            cancel_url=change_url,
        )


admin.site.register(StatementImport, StatementImportAdmin)
