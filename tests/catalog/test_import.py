"""Importing the catalogue: good files save (with price history), broken files save nothing."""

import io
import re
from decimal import Decimal

import openpyxl
import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import Bundle, BundlePriceChange
from catalog.resources import (
    DUPLICATE_IN_FILE,
    PRICE_HAS_CENTS,
    PRICE_NOT_A_NUMBER,
    PRICE_NOT_POSITIVE,
    BundleResource,
)
from tests.catalog.factories import BundleFactory

pytestmark = pytest.mark.django_db

HEADER = "slug,name,category,data_mb,validity_hours,price,active,featured,display_order,description"
GOOD = (
    HEADER + "\n"
    "daily-1gb,Daily 1GB,daily,1024,24,99,1,0,1,1GB for a day\n"
    'weekly-10gb,Weekly 10GB,Weekly,10240,168,"1,500",1,1,1,\n'
)


def _import(csv_text, user=None, dry_run=False):
    dataset = tablib.Dataset().load(csv_text, format="csv")
    return BundleResource().import_data(
        dataset, dry_run=dry_run, user=user, rollback_on_validation_errors=True
    )


def _all_errors(result):
    messages = [str(e.error) for e in result.base_errors]
    for row in result.invalid_rows:
        for field_errors in row.error_dict.values():
            messages.extend(str(m) for m in field_errors)
    for _, row_errors in result.row_errors():
        messages.extend(str(e.error) for e in row_errors)
    return messages


def test_good_file_creates_bundles_and_records_prices_as_import(manager):
    result = _import(GOOD, user=manager)
    assert not result.has_errors() and not result.has_validation_errors()
    weekly = Bundle.objects.get(slug="weekly-10gb")
    assert weekly.price == Decimal("1500") and weekly.category == "weekly" and weekly.featured
    change = weekly.price_changes.get()
    assert (change.old_price, change.source, change.changed_by) == (None, "import", manager)


def test_reimport_with_new_price_updates_and_records_the_change(manager):
    _import(GOOD, user=manager)
    _import(GOOD.replace("24,99,", "24,120,"), user=manager)
    daily = Bundle.objects.get(slug="daily-1gb")
    assert daily.price == Decimal("120")
    latest = daily.price_changes.first()
    assert (latest.old_price, latest.new_price, latest.source) == (Decimal("99"), Decimal("120"), "import")


def test_unchanged_rows_are_skipped_without_history(manager):
    _import(GOOD, user=manager)
    _import(GOOD, user=manager)
    assert BundlePriceChange.objects.count() == 2


def test_dry_run_saves_nothing(manager):
    result = _import(GOOD, user=manager, dry_run=True)
    assert not result.has_errors() and not result.has_validation_errors()
    assert not Bundle.objects.exists() and not BundlePriceChange.objects.exists()


@pytest.mark.parametrize(
    "bad_price, message",
    [
        ("abc", PRICE_NOT_A_NUMBER.format(value="abc")),
        ("99.50", PRICE_HAS_CENTS.format(value="99.50")),
        ("-5", PRICE_NOT_POSITIVE.format(value="-5")),
        ("0", PRICE_NOT_POSITIVE.format(value="0")),
    ],
)
def test_bad_price_saves_nothing_and_names_the_problem(manager, bad_price, message):
    result = _import(GOOD.replace("24,99,", f"24,{bad_price},"), user=manager)
    assert result.has_validation_errors()
    assert message in _all_errors(result)
    assert not Bundle.objects.exists()  # the good weekly row was rolled back too


def test_wrong_header_saves_nothing_and_says_which_columns_are_missing(manager):
    result = _import(GOOD.replace("price,", "cost,", 1), user=manager)
    assert result.has_errors()
    errors = " ".join(_all_errors(result))
    assert "missing column(s) price" in errors
    assert not Bundle.objects.exists()


def test_duplicate_name_within_file_saves_nothing(manager):
    dup = GOOD + "daily-1gb-again,Daily 1GB,daily,1024,24,99,1,0,2,\n"
    result = _import(dup, user=manager)
    assert result.has_validation_errors()
    assert DUPLICATE_IN_FILE.format(what="Name", value="daily 1gb", first=1) in _all_errors(result)
    assert not Bundle.objects.exists()


def test_duplicate_name_against_database_saves_nothing(manager):
    BundleFactory(name="Daily 1GB", slug="something-else")
    result = _import(GOOD, user=manager)
    assert result.has_validation_errors()
    assert any("already exists" in m for m in _all_errors(result))
    assert Bundle.objects.count() == 1


# ---- through the admin: upload, dry-run preview, confirm ----------------------------------


def _upload(client, content, name="bundles.csv", fmt="0"):
    return client.post(
        "/admin/catalog/bundle/import/",
        {"format": fmt, "resource": "0", "import_file": SimpleUploadedFile(name, content)},
    )


def _format_index(client, label):
    html = client.get("/admin/catalog/bundle/import/").content.decode()
    options = re.findall(r'<option value="(\d+)"[^>]*>\s*([^<]+?)\s*</option>', html)
    return next(v for v, text in options if text.lower() == label)


def test_admin_import_preview_then_confirm(client_for, manager):
    client = client_for(manager)
    preview = _upload(client, GOOD.encode(), fmt=_format_index(client, "csv"))
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Daily 1GB" in html and "process_import" in html
    assert not Bundle.objects.exists()  # the preview is a dry run

    form = {
        name: value
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)
        if name != "csrfmiddlewaretoken"
    }
    done = client.post("/admin/catalog/bundle/process_import/", form)
    assert done.status_code == 302
    assert Bundle.objects.count() == 2
    assert set(BundlePriceChange.objects.values_list("source", flat=True)) == {"import"}


def test_admin_import_of_broken_file_shows_row_errors_and_no_confirm(client_for, manager):
    client = client_for(manager)
    broken = GOOD.replace("24,99,", "24,abc,").encode()
    response = _upload(client, broken, fmt=_format_index(client, "csv"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Price must be a whole number of shillings" in html
    assert "process_import" not in html
    assert not Bundle.objects.exists()


def test_admin_import_xlsx(client_for, manager):
    book = openpyxl.Workbook()
    sheet = book.active
    for line in GOOD.strip().split("\n"):
        sheet.append(next(iter([list(r) for r in __import__("csv").reader([line])])))
    buffer = io.BytesIO()
    book.save(buffer)
    client = client_for(manager)
    response = _upload(client, buffer.getvalue(), name="bundles.xlsx", fmt=_format_index(client, "xlsx"))
    assert response.status_code == 200
    assert "Weekly 10GB" in response.content.decode()
