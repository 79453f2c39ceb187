"""Admin for ledger exports: who exported what, the background jobs and their files.

Files are served only through the download view here, to people allowed to export.
"""

from __future__ import annotations

import os
import tempfile

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin
from console.kernel.confirm import admin_page
from console.kernel.exceptions import DomainError
from ledger.books import exports
from ledger.books.forms import ExportForm
from ledger.models import ExportJob, ExportStatus

EXPORT_NO_FILE = "This export has no file to download."


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "created_by",
        "format",
        "display_filters",
        "status",
        "display_progress",
        "display_download",
    ]
    list_filter = ["status", "format"]
    list_filter_submit = True
    list_select_related = ["created_by"]
    show_full_result_count = False
    paginator = InfinitePaginator
    actions_list = ["new_export"]
    readonly_fields = [
        "created_by",
        "created_at",
        "format",
        "filters",
        "status",
        "rows_total",
        "rows_done",
        "display_progress",
        "display_download",
        "error",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields

    @display(description="Filters")
    def display_filters(self, obj):
        f = obj.filters or {}
        parts = [f"{f.get('date_from', '?')} → {f.get('date_to', '?')}"]
        if f.get("accounts"):
            parts.append(", ".join(f["accounts"]))
        if f.get("channel"):
            parts.append(f["channel"])
        return " · ".join(parts)

    @display(description="Progress")
    def display_progress(self, obj):
        pct = obj.progress_percent
        total = obj.rows_total if obj.rows_total is not None else "?"
        return format_html(
            '<div class="flex flex-col gap-1 min-w-32" title="{} of {} rows">'
            '<div class="bg-base-100 rounded-default overflow-hidden dark:bg-base-800">'
            '<div class="h-1.5 bg-primary-600 dark:bg-primary-500" style="width: {}%"></div></div>'
            '<span class="text-xs">{}% · {} / {}</span></div>',
            obj.rows_done,
            total,
            pct,
            pct,
            obj.rows_done,
            total,
        )

    @display(description="File")
    def display_download(self, obj):
        if obj.status == ExportStatus.DONE and obj.file:
            url = reverse("admin:ledger_exportjob_download", args=[obj.pk])
            return format_html('<a class="text-primary-600 font-medium" href="{}">Download</a>', url)
        if obj.status == ExportStatus.DONE:
            return "downloaded directly"
        return "—"

    # Export records are the audit of who exported what: nobody edits or deletes them.

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="ledger_exportjob_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, pk):
        # Files are served only here, to people allowed to export: never from a public media URL.
        if not request.user.has_perm("ledger.export_ledger"):
            raise PermissionDenied
        job = get_object_or_404(ExportJob, pk=pk)
        if job.status != ExportStatus.DONE or not job.file:
            raise Http404(EXPORT_NO_FILE)
        return FileResponse(
            job.file.open("rb"),
            as_attachment=True,
            filename=exports.export_filename(job.filters, job.format),
            content_type=exports.CONTENT_TYPES[job.format],
        )

    @action(description="New export", icon="download", permissions=["ledger.export_ledger"])
    def new_export(self, request):
        form = ExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                filters = exports.export_filters(
                    date_from=data["date_from"],
                    date_to=data["date_to"],
                    accounts=data["accounts"],
                    channel=data["channel"],
                )
                count = exports.export_count(filters)
                if count <= exports.DIRECT_MAX_ROWS:
                    return self._download_now(request, filters, data["format"], count)
                job = exports.export_job_create(
                    filters=filters, fmt=data["format"], user=request.user, rows_total=count
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    f"{count:,} postings: export #{job.pk} is running in the background. "
                    "Its file appears here when it is done.",
                )
                return redirect("admin:ledger_exportjob_changelist")
        return admin_page(
            self,
            request,
            "admin/ledger/export_form.html",
            "Export the ledger",
            form=form,
            cancel_url=reverse("admin:ledger_exportjob_changelist"),
            intro=f"Up to {exports.DIRECT_MAX_ROWS:,} postings download at once; larger exports run in "
            f"the background and are offered here when done. XLSX holds at most {exports.XLSX_MAX_ROWS:,} "
            "postings; CSV has no limit.",
        )

    def _download_now(self, request, filters, fmt, count):
        exports.export_record_direct(filters=filters, fmt=fmt, user=request.user, rows=count)
        fd, tmp_path = tempfile.mkstemp(suffix="." + fmt)
        os.close(fd)
        try:
            exports.export_write(filters=filters, fmt=fmt, path=tmp_path)
            fh = open(tmp_path, "rb")  # noqa: SIM115  (FileResponse closes it)
        finally:
            os.unlink(tmp_path)  # the open handle keeps the data until the response is sent
        return FileResponse(
            fh,
            as_attachment=True,
            filename=exports.export_filename(filters, fmt),
            content_type=exports.CONTENT_TYPES[fmt],
        )
