"""The file formats the bundle catalogue imports and exports (django-import-export).

Import reads CSV or XLSX through the shared upload checks (console/uploads.py): at most
UPLOAD_BUNDLE_MAX_BYTES and UPLOAD_BUNDLE_MAX_ROWS, the zip checks and a streamed sheet for
XLSX, and the one encoding detection for CSV (so a Windows-1252 file with "Café" imports).
Export writes CSV and XLSX whose text cells a spreadsheet will never run as formulas.
"""

from __future__ import annotations

import io

import tablib
from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.utils.text import capfirst
from import_export.formats import base_formats
from unfold.contrib.import_export.forms import ImportForm, SelectableFieldsExportForm

from catalog.models import Bundle
from console.kernel.uploads import (
    TOO_LARGE,
    UploadRefused,
    csv_rows,
    decode_text,
    human_size,
    is_zip,
    limit,
    read_limited,
    spreadsheet_safe,
    xlsx_sheets,
    xlsx_text_cell,
)

WHAT = "bundle file"
MAX_COLUMNS = 20  # the catalogue has 10 columns; more are never read
NOT_XLSX = "This is not an .xlsx file; choose the format that matches the file."


def _bytes(in_stream) -> bytes:
    if isinstance(in_stream, str):
        return in_stream.encode("utf-8")
    return bytes(in_stream)


def _dataset(rows: list[list[object]]) -> tablib.Dataset:
    dataset = tablib.Dataset()
    rows = [row for row in rows if any(cell not in (None, "") for cell in row)]
    if not rows:
        return dataset
    headers = ["" if h is None else str(h) for h in rows[0]]
    dataset.headers = headers
    for row in rows[1:]:
        row = list(row)[: len(headers)]
        dataset.append(row + [None] * (len(headers) - len(row)))
    return dataset


class BundleCSVImport(base_formats.CSV):
    """CSV read as bytes, so the encoding is detected here rather than assumed UTF-8."""

    def is_binary(self):
        return True

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        data = read_limited(_bytes(in_stream), limit("UPLOAD_BUNDLE_MAX_BYTES"), what=WHAT)
        text = decode_text(data)
        return _dataset(csv_rows(text, max_rows=limit("UPLOAD_BUNDLE_MAX_ROWS"), header_rows=1, what=WHAT))


class BundleXLSXImport(base_formats.XLSX):
    def create_dataset(self, in_stream):
        data = read_limited(_bytes(in_stream), limit("UPLOAD_BUNDLE_MAX_BYTES"), what=WHAT)
        if not is_zip(data):
            raise UploadRefused(NOT_XLSX)
        sheets = xlsx_sheets(
            data,
            max_rows=limit("UPLOAD_BUNDLE_MAX_ROWS"),
            max_cols=MAX_COLUMNS,
            what=WHAT,
            first_only=True,
            header_rows=1,
        )
        return _dataset(sheets[0] if sheets else [])


class BundleCSVExport(base_formats.CSV):
    def export_data(self, dataset, **kwargs):
        safe = tablib.Dataset(headers=dataset.headers)
        for row in dataset:
            safe.append([spreadsheet_safe(value) for value in row])
        return super().export_data(safe, **kwargs)


class BundleXLSXExport(base_formats.XLSX):
    def export_data(self, dataset, **kwargs):
        from openpyxl import Workbook
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "Bundles"
        sheet.append(list(dataset.headers or []))
        for row in dataset:
            sheet.append(
                [
                    ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", v) if isinstance(v, str) else v
                    for v in row
                ]
            )
            for cell in sheet[sheet.max_row]:
                xlsx_text_cell(cell)
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()


IMPORT_FORMATS = [BundleCSVImport, BundleXLSXImport]
EXPORT_FORMATS = [BundleCSVExport, BundleXLSXExport]


class BundleImportForm(ImportForm):
    """The import form, refusing a file over UPLOAD_BUNDLE_MAX_BYTES before it is read."""

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        max_bytes = limit("UPLOAD_BUNDLE_MAX_BYTES")
        if upload is not None and upload.size > max_bytes:
            raise forms.ValidationError(TOO_LARGE.format(what=WHAT, limit=human_size(max_bytes)))
        return upload


class BundleExportForm(SelectableFieldsExportForm):
    """The export's column picker labels each column as the bundle form does ("Data (MB)")."""

    def _get_field_label(self, resource, field_name: str) -> str:
        try:
            return capfirst(Bundle._meta.get_field(field_name).verbose_name)
        except FieldDoesNotExist:
            return super()._get_field_label(resource, field_name)
