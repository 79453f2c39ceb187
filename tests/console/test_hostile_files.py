"""Hostile files in, safe files out: upload limits, zip bombs, huge declared sheets, encodings and
formula neutralisation in every export. Every bomb is built here, small, never committed."""

import csv
import datetime as dt
import io
import re
import time
import tracemalloc
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog.formats import BundleCSVImport, BundleXLSXImport
from catalog.models import Bundle
from console.kernel import uploads
from console.kernel.clock import NAIROBI
from console.kernel.uploads import UploadRefused, decode_text, spreadsheet_safe
from ledger import books
from ledger.books import exports
from reconciliation.models import Claim, StatementImport, TillReceipt, WhatsAppImport
from reconciliation.parsers.whatsapp import ChatExportError, parse_chat_export
from reconciliation.services import receipts as receipt_services
from reconciliation.services.errors import ImportRefused
from reconciliation.services.exports import claims_export_rows
from tests.catalog.factories import BundleFactory
from tests.reconciliation.factories import ClaimFactory

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data"
STATEMENT = DATA / "reconciliation" / "statement_march.csv"
CHAT = DATA / "reconciliation" / "chat_march_android.txt"
BUNDLES_CSV = (
    "slug,name,category,data_mb,validity_hours,price,active,featured,display_order,description\n"
    "cafe-daily,Café Daily,daily,1024,24,99,1,0,1,Bundle ya café\n"
)
MB = 1024 * 1024


def admin_url(name, *args):
    return reverse(f"admin:reconciliation_{name}", args=args)


# --- builders ----------------------------------------------------------------------------------


def xlsx_of(rows) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_huge_dimension(xlsx: bytes) -> bytes:
    """The same workbook whose sheet declares A1:XFD1048576 (17 billion cells)."""
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                data, n = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', data)
                assert n == 1
            target.writestr(info.filename, data)
    return out.getvalue()


def zip_bomb(member: str, size: int) -> bytes:
    """A zip holding ``size`` bytes of newlines, written in chunks (compresses ~1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(member, "w") as fh:
        chunk = b"\n" * MB
        for _ in range(size // MB):
            fh.write(chunk)
    return out.getvalue()


def statement_rows():
    with open(STATEMENT, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# --- the shared helpers ------------------------------------------------------------------------


def test_read_limited_stops_past_the_limit_even_when_the_size_is_not_stated():
    class Endless:
        read_count = 0

        def read(self, n):
            self.read_count += 1
            return b"x" * n

    endless = Endless()
    with pytest.raises(UploadRefused, match="larger than 1 MB"):
        uploads.read_limited(endless, MB)
    assert endless.read_count <= MB // uploads.CHUNK_BYTES + 1
    assert uploads.read_limited(io.BytesIO(b"abc"), 3) == b"abc"


def test_decode_text_detects_bom_utf8_and_windows_1252():
    assert decode_text("Café".encode("cp1252")) == "Café"
    assert decode_text("Café".encode()) == "Café"
    assert decode_text("Café".encode("utf-8-sig")) == "Café"
    assert decode_text("Café".encode("utf-16")) == "Café"


@pytest.mark.parametrize(
    "value, expected",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+254 call", "'+254 call"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Daily 2GB", "Daily 2GB"),
        ("-150.00", "-150.00"),
        ("+150", "+150"),
        (-150, -150),
        (Decimal("-1.5"), Decimal("-1.5")),
        (None, None),
    ],
)
def test_spreadsheet_safe(value, expected):
    assert spreadsheet_safe(value) == expected


def test_a_member_whose_directory_understates_its_size_is_still_refused(settings):
    settings.UPLOAD_ZIP_MAX_RATIO = 10**9
    archive = zipfile.ZipFile(io.BytesIO(zip_bomb("_chat.txt", 3 * MB)))
    archive.getinfo("_chat.txt").file_size = 10  # the directory lies
    with pytest.raises(UploadRefused):
        uploads.zip_member_checked(archive, "_chat.txt", max_bytes=MB)


# --- statements ----------------------------------------------------------------------------------


def test_xlsx_statement_declaring_a_huge_sheet_imports_quickly_in_bounded_memory():
    data = with_huge_dimension(xlsx_of(statement_rows()))
    tracemalloc.start()
    started = time.monotonic()
    try:
        preview = receipt_services.statement_preview(data=data, filename="march.xlsx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert preview["new"] == 3 and preview["errors"] == []
    assert time.monotonic() - started < 10
    assert peak < 50 * MB


def test_xlsx_statement_past_the_row_limit_is_refused(settings):
    settings.UPLOAD_STATEMENT_MAX_ROWS = 5
    data = xlsx_of(statement_rows())
    with pytest.raises(ImportRefused, match="more than 5 rows"):
        receipt_services.statement_preview(data=data, filename="march.xlsx")


def test_csv_statement_past_the_row_limit_is_refused_in_the_command(settings):
    settings.UPLOAD_STATEMENT_MAX_ROWS = 5
    with pytest.raises(CommandError, match="more than 5 rows"):
        call_command("import_statement", str(STATEMENT))
    assert not StatementImport.objects.exists() and not TillReceipt.objects.exists()


def test_xlsx_statement_holding_a_zip_bomb_is_refused(settings):
    settings.UPLOAD_XLSX_MEMBER_MAX_BYTES = MB
    source = zipfile.ZipFile(io.BytesIO(xlsx_of(statement_rows())))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
        target.writestr("xl/media/padding.bin", b"\0" * 5 * MB)
    with pytest.raises(ImportRefused, match="unpacks to more than 1 MB"):
        receipt_services.statement_preview(data=out.getvalue(), filename="march.xlsx")


def test_oversized_statement_is_refused_by_the_admin_and_the_command(settings, client_for, finance, tmp_path):
    settings.UPLOAD_STATEMENT_MAX_BYTES = 1000
    response = client_for(finance).post(
        admin_url("statementimport_upload_statement"),
        {"file": SimpleUploadedFile("march.csv", STATEMENT.read_bytes())},
    )
    assert response.status_code == 200
    assert "larger than 1000 bytes" in response.content.decode()
    with pytest.raises(CommandError, match="larger than 1000 bytes"):
        call_command("import_statement", str(STATEMENT))
    assert not StatementImport.objects.exists()


def test_huge_declared_xlsx_through_the_statement_upload_and_command(client_for, finance, tmp_path):
    data = with_huge_dimension(xlsx_of(statement_rows()))
    response = client_for(finance).post(
        admin_url("statementimport_upload_statement"), {"file": SimpleUploadedFile("march.xlsx", data)}
    )
    assert response.status_code == 302 and StatementImport.objects.count() == 1
    path = tmp_path / "march.xlsx"
    path.write_bytes(data)
    call_command("import_statement", str(path), "--dry-run")


# --- chat exports ----------------------------------------------------------------------------------


def test_zip_bomb_chat_is_refused_from_its_directory_quickly(settings):
    settings.UPLOAD_CHAT_TEXT_MAX_BYTES = MB
    settings.UPLOAD_ZIP_MAX_RATIO = 10**6  # the size limit alone refuses it
    bomb = zip_bomb("_chat.txt", 5 * MB)
    assert len(bomb) < 50_000
    with pytest.raises(ChatExportError, match="unpacks to more than 1 MB"):
        parse_chat_export(bomb, "chat.zip")


def test_chat_member_compressed_too_well_is_refused_as_a_bomb(settings):
    bomb = zip_bomb("_chat.txt", 3 * MB)
    with pytest.raises(ChatExportError, match="zip bomb"):
        parse_chat_export(bomb, "chat.zip")


def test_zip_bomb_chat_through_the_admin_and_the_command(settings, client_for, agent, tmp_path):
    settings.UPLOAD_CHAT_TEXT_MAX_BYTES = MB
    settings.UPLOAD_ZIP_MAX_RATIO = 10**6
    bomb = zip_bomb("_chat.txt", 5 * MB)
    response = client_for(agent).post(
        reverse("admin:reconciliation_claim_upload_chat"), {"file": SimpleUploadedFile("chat.zip", bomb)}
    )
    assert response.status_code == 200 and "unpacks to more than 1 MB" in response.content.decode()
    path = tmp_path / "chat.zip"
    path.write_bytes(bomb)
    with pytest.raises(CommandError, match="unpacks to more than 1 MB"):
        call_command("import_whatsapp", str(path))
    assert not WhatsAppImport.objects.exists() and not Claim.objects.exists()


def test_oversized_chat_upload_and_text_are_refused(settings, client_for, agent, tmp_path):
    settings.UPLOAD_CHAT_MAX_BYTES = 500
    response = client_for(agent).post(
        reverse("admin:reconciliation_claim_upload_chat"),
        {"file": SimpleUploadedFile("chat.txt", CHAT.read_bytes())},
    )
    assert response.status_code == 200 and "larger than 500 bytes" in response.content.decode()
    with pytest.raises(CommandError, match="larger than 500 bytes"):
        call_command("import_whatsapp", str(CHAT))
    settings.UPLOAD_CHAT_MAX_BYTES = MB
    settings.UPLOAD_CHAT_TEXT_MAX_BYTES = 500
    with pytest.raises(CommandError, match="larger than 500 bytes"):
        call_command("import_whatsapp", str(CHAT))
    assert not WhatsAppImport.objects.exists()


def test_windows_1252_chat_still_imports():
    text = CHAT.read_text(encoding="utf-8").replace("Thanks", "Asante café")
    chat = parse_chat_export(text.encode("cp1252", errors="replace"), "chat.txt")
    assert chat.messages


# --- bundle imports --------------------------------------------------------------------------------


def _upload_bundles(client, content, name, fmt_label):
    html = client.get("/admin/catalog/bundle/import/").content.decode()
    options = re.findall(r'<option value="(\d+)"[^>]*>\s*([^<]+?)\s*</option>', html)
    fmt = next(v for v, text in options if text.lower() == fmt_label)
    return client.post(
        "/admin/catalog/bundle/import/",
        {"format": fmt, "resource": "0", "import_file": SimpleUploadedFile(name, content)},
    )


def _confirm(client, html):
    form = {
        name: value
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)
        if name != "csrfmiddlewaretoken"
    }
    return client.post("/admin/catalog/bundle/process_import/", form)


def test_windows_1252_bundle_csv_imports_cafe_correctly(client_for, manager):
    client = client_for(manager)
    preview = _upload_bundles(client, BUNDLES_CSV.encode("cp1252"), "bundles.csv", "csv")
    html = preview.content.decode()
    assert "UnicodeDecodeError" not in html and "Café Daily" in html
    assert _confirm(client, html).status_code == 302
    bundle = Bundle.objects.get(slug="cafe-daily")
    assert bundle.name == "Café Daily" and bundle.description == "Bundle ya café"


def test_bundle_csv_encodings_read_alike():
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "cp1252"):
        dataset = BundleCSVImport().create_dataset(BUNDLES_CSV.encode(encoding))
        assert dataset[0][1] == "Café Daily", encoding


def test_oversized_bundle_file_is_refused_by_the_form(settings, client_for, manager):
    settings.UPLOAD_BUNDLE_MAX_BYTES = 100
    response = _upload_bundles(client_for(manager), BUNDLES_CSV.encode() * 2, "bundles.csv", "csv")
    assert response.status_code == 200 and "larger than 100 bytes" in response.content.decode()
    assert not Bundle.objects.exists()


def test_bundle_file_past_the_row_limit_is_refused(settings, client_for, manager):
    settings.UPLOAD_BUNDLE_MAX_ROWS = 1
    two = BUNDLES_CSV + "cafe-weekly,Café Weekly,weekly,2048,168,299,1,0,2,\n"
    response = _upload_bundles(client_for(manager), two.encode(), "bundles.csv", "csv")
    html = response.content.decode()
    assert response.status_code == 200 and "more than 1 rows" in html and "process_import" not in html
    assert not Bundle.objects.exists()


def test_bundle_xlsx_declaring_a_huge_sheet_is_read_quickly(client_for, manager):
    rows = list(csv.reader(io.StringIO(BUNDLES_CSV)))
    data = with_huge_dimension(xlsx_of(rows))
    started = time.monotonic()
    dataset = BundleXLSXImport().create_dataset(data)
    assert len(dataset) == 1 and dataset[0][1] == "Café Daily"
    response = _upload_bundles(client_for(manager), data, "bundles.xlsx", "xlsx")
    assert response.status_code == 200 and "Café Daily" in response.content.decode()
    assert time.monotonic() - started < 10


def test_bundle_xlsx_zip_bomb_is_refused_with_a_message(settings, client_for, manager):
    settings.UPLOAD_XLSX_MEMBER_MAX_BYTES = MB
    response = _upload_bundles(
        client_for(manager), zip_bomb("xl/worksheets/sheet1.xml", 5 * MB), "b.xlsx", "xlsx"
    )
    html = response.content.decode()
    assert response.status_code == 200 and "unpacks to more than 1 MB" in html
    assert "encountered while trying to read file" not in html


# --- exports -------------------------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example","click")'


def test_ledger_export_neutralises_memos_and_keeps_amounts_numbers(tmp_path):
    when = dt.datetime(2026, 3, 2, 10, 0, tzinfo=NAIROBI)
    books.entry_post(
        kind="till_receipt",
        lines=[("mpesa_till", Decimal("150")), ("unallocated_receipts", Decimal("-150"))],
        receipt_code="TK1ABC2DEF",
        channel="till",
        memo=FORMULA,
        posted_at=when,
    )
    filters = exports.export_filters(date_from=when.date(), date_to=when.date())
    csv_path = tmp_path / "ledger.csv"
    exports.export_write(filters=filters, fmt="csv", path=str(csv_path))
    rows = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"))))
    assert {row[9] for row in rows[1:]} == {"'" + FORMULA}
    assert sorted(row[4] or row[5] for row in rows[1:]) == ["150.00", "150.00"]

    xlsx_path = tmp_path / "ledger.xlsx"
    exports.export_write(filters=filters, fmt="xlsx", path=str(xlsx_path))
    sheet = openpyxl.load_workbook(xlsx_path)["Postings"]
    memo_cells = [row[9] for row in sheet.iter_rows(min_row=2)]
    assert {(c.value, c.data_type) for c in memo_cells} == {(FORMULA, "s")}
    amounts = [row[4].value or row[5].value for row in sheet.iter_rows(min_row=2)]
    assert all(isinstance(a, int | float) for a in amounts)


def test_claims_export_neutralises_bundle_names_and_keeps_amounts():
    bundle = BundleFactory(name="-2+3+cmd|' /C calc'!A0")
    ClaimFactory(bundle=bundle, claimed_amount=Decimal("150"))
    header, row = list(claims_export_rows())
    assert row[7] == "'-2+3+cmd|' /C calc'!A0" and row[6] == "150.00"


def test_bundle_export_neutralises_csv_and_writes_strings_in_xlsx(client_for, manager):
    BundleFactory(name=FORMULA, slug="evil", description="@SUM(A1:A9)", price=Decimal("150"))
    client = client_for(manager)
    fields = {f"bundleresource_{f}": "on" for f in ("slug", "name", "price", "description")}
    html = client.get("/admin/catalog/bundle/export/").content.decode()
    options = dict(
        (text.lower(), v)
        for v, text in re.findall(r'<option value="(\d+)"[^>]*>\s*([^<]+?)\s*</option>', html)
    )
    body = client.post("/admin/catalog/bundle/export/", {"format": options["csv"], "resource": "0", **fields})
    row = next(
        r for r in csv.DictReader(io.StringIO(body.content.decode("utf-8-sig"))) if r["slug"] == "evil"
    )
    assert row["name"] == "'" + FORMULA and row["description"] == "'@SUM(A1:A9)" and row["price"] == "150"

    body = client.post(
        "/admin/catalog/bundle/export/", {"format": options["xlsx"], "resource": "0", **fields}
    )
    sheet = openpyxl.load_workbook(io.BytesIO(body.content)).active
    headers = [c.value for c in sheet[1]]
    cells = dict(zip(headers, sheet[2], strict=True))
    assert (cells["name"].value, cells["name"].data_type) == (FORMULA, "s")
    assert cells["description"].data_type == "s"


def test_the_row_limit_holds_across_all_the_sheets_of_a_workbook(settings):
    settings.UPLOAD_STATEMENT_MAX_ROWS = 12
    book = openpyxl.Workbook()
    for row in statement_rows():
        book.active.append(row)
    book.create_sheet("Copy")
    for row in statement_rows():
        book["Copy"].append(row)
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(ImportRefused, match="more than 12 rows"):
        receipt_services.statement_preview(data=out.getvalue(), filename="march.xlsx")


def test_a_row_numbered_a_million_is_refused_without_reading_a_million_rows(settings):
    settings.UPLOAD_STATEMENT_MAX_ROWS = 1000
    source = zipfile.ZipFile(io.BytesIO(xlsx_of(statement_rows())))
    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = data.replace(b"</sheetData>", far)
            target.writestr(info.filename, data)
    started = time.monotonic()
    with pytest.raises(ImportRefused, match="more than 1,000 rows"):
        receipt_services.statement_preview(data=out.getvalue(), filename="march.xlsx")
    assert time.monotonic() - started < 5
