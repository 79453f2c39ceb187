"""The catalogue as a spreadsheet (CSV/XLSX) for django-import-export.

Rows are matched by slug. Every saved row goes through services.bundle_save(source="import"), so
an imported price change is recorded exactly like one typed in the admin. An import is all or
nothing: any bad row rolls the whole file back.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils.html import format_html
from django.utils.text import capfirst
from import_export import fields, resources, widgets

from catalog.models import Bundle, BundleCategory
from catalog.prices import price_clashes
from catalog.services import bundle_save
from console.kernel.money import ksh

REQUIRED_COLUMNS = ("slug", "name", "category", "data_mb", "validity_hours", "price")
OPTIONAL_COLUMNS = ("active", "featured", "display_order", "description")

WRONG_HEADER = (
    "The file's header row is not a bundle catalogue: missing column(s) {missing}. Expected: {expected}."
)
PRICE_NOT_A_NUMBER = "Price must be a whole number of shillings, e.g. 150 (got {value!r})."
PRICE_HAS_CENTS = "Price must be whole shillings: M-Pesa takes no cents (got {value!r})."
PRICE_NOT_POSITIVE = "Price must be at least 1 shilling (got {value!r})."
CATEGORY_UNKNOWN = "Category must be one of {choices} (got {value!r})."
DUPLICATE_IN_FILE = "{what} {value!r} appears more than once in this file (first on row {first})."


class ShillingWidget(widgets.Widget):
    """Whole Kenyan shillings: accepts '1500', '1,500', 'Ksh 1,500', '1500.00'; refuses cents."""

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip()
        cleaned = text.upper().removeprefix("KSH").removeprefix("KES").replace(",", "").strip()
        try:
            amount = Decimal(cleaned)
        except InvalidOperation:
            raise ValueError(PRICE_NOT_A_NUMBER.format(value=text))
        if not amount.is_finite():
            raise ValueError(PRICE_NOT_A_NUMBER.format(value=text))
        if amount != amount.to_integral_value():
            raise ValueError(PRICE_HAS_CENTS.format(value=text))
        if amount < 1:
            raise ValueError(PRICE_NOT_POSITIVE.format(value=text))
        return amount.quantize(Decimal("0.01"))

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return str(int(value)) if value == value.to_integral_value() else str(value)


class CategoryWidget(widgets.Widget):
    """A category by value or label, any case: 'daily', 'Daily', 'DAILY'."""

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip().lower()
        if not text:
            return ""
        if text not in BundleCategory.values:
            raise ValueError(CATEGORY_UNKNOWN.format(choices=", ".join(BundleCategory.values), value=value))
        return text

    def render(self, value, obj=None, **kwargs):
        return value or ""


class BundleDiff(resources.Diff):
    """The preview's changes as "old → new" per column; a price reads "Ksh 150 → Ksh 160".

    import-export's default is a character diff, which turns 150 → 160 into "1<del>5</del><ins>6</ins>0"
    (read as 1,560) and a display order 1 → 0 into "10".
    """

    def __init__(self, resource, instance, new):
        super().__init__(resource, instance, new)
        self.columns = [f.column_name for f in resource.get_import_fields()]

    def as_html(self):
        cells = []
        for column, before, after in zip(self.columns, self.left, self.right, strict=False):
            show = ksh if column == "price" else str
            if self.new or before == after:
                cells.append(show(after) if after not in (None, "") else "")
                continue
            cells.append(
                format_html(
                    '<span class="{}-change">{} → <ins class="font-semibold no-underline">{}</ins></span>',
                    "price" if column == "price" else "value",
                    show(before) if before not in (None, "") else "—",
                    show(after) if after not in (None, "") else "—",
                )
            )
        return cells


class BundleResource(resources.ModelResource):
    price = fields.Field(attribute="price", column_name="price", widget=ShillingWidget())
    category = fields.Field(attribute="category", column_name="category", widget=CategoryWidget())

    class Meta:
        model = Bundle
        import_id_fields = ["slug"]
        fields = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
        export_order = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True
        report_skipped = True

    @classmethod
    def get_diff_class(cls):
        return BundleDiff

    def get_diff_headers(self):
        # The preview's columns as the bundle form names them ("Data (MB)", not "Data_mb").
        return [capfirst(Bundle._meta.get_field(f.attribute).verbose_name) for f in self.get_import_fields()]

    def after_import(self, dataset, result, **kwargs):
        # Still inside the import's transaction: the catalogue as it would be after this file.
        slugs = [str(s or "").strip() for s in dataset["slug"]] if len(dataset) else []
        result.price_clashes = price_clashes(slugs=slugs) if slugs else []

    def before_import(self, dataset, **kwargs):
        self._user = kwargs.get("user")
        self._seen: dict[tuple[str, str], int] = {}
        headers = [str(h or "").strip() for h in (dataset.headers or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in headers]
        if missing:
            # No row is worth reading against the wrong columns: drop them, report the header.
            while len(dataset):
                del dataset[0]
            raise ValueError(
                WRONG_HEADER.format(missing=", ".join(missing), expected=", ".join(self._meta.export_order))
            )
        dataset.headers = headers

    def before_import_row(self, row, **kwargs):
        self._row_number = kwargs.get("row_number")

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        row = getattr(self, "_row_number", None)
        for attr, what in (("slug", "Slug"), ("name", "Name")):
            value = str(getattr(instance, attr) or "").strip().lower()
            if not value:
                continue
            first = self._seen.get((attr, value))
            if first is not None:
                message = DUPLICATE_IN_FILE.format(what=what, value=value, first=first)
                errors.setdefault(attr, []).append(message)
            else:
                self._seen[(attr, value)] = row
        super().validate_instance(instance, errors, validate_unique)

    def do_instance_save(self, instance, is_create):
        bundle_save(bundle=instance, changed_by=getattr(self, "_user", None), source="import")
