"""Catalogue admin: managers create, edit, reorder, feature, retire and import bundles; everyone
else with a role sees the catalogue read-only. Every write goes through catalog.services."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from import_export.admin import ImportExportModelAdmin
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import RangeNumericFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from catalog.formats import EXPORT_FORMATS, IMPORT_FORMATS, BundleExportForm, BundleImportForm
from catalog.forms import BundleAdminForm
from catalog.models import Bundle, BundlePriceChange
from catalog.prices import price_clash_for, price_clashes_on_activation
from catalog.resources import BundleResource
from catalog.services import (
    BundleHasOrders,
    bundle_delete,
    bundle_retire,
    bundle_save,
    bundles_set_active,
    bundles_set_featured,
)
from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin
from console.kernel.confirm import confirm_page, confirmed
from console.kernel.money import ksh
from console.kernel.uploads import UploadRefused

RETIRED = "“{name}” is retired: it no longer shows on the storefront. Its orders and history are kept."
ALREADY_RETIRED = "“{name}” was already retired; nothing changed."
BULK_DONE = "{count} of {total} selected bundle(s) {verb}."


class BundlePriceChangeInline(ReadOnlyAdminMixin, TabularInline):
    """Price history, newest first. Read-only: history is written by bundle_save, never by hand."""

    model = BundlePriceChange
    fields = ("changed_at", "display_old_price", "display_new_price", "changed_by", "source")
    readonly_fields = fields
    ordering = ("-changed_at", "-id")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    hide_title = True  # the row's str() repeats the columns
    verbose_name = "price change"
    verbose_name_plural = "price history"

    def has_view_permission(self, request, obj=None):
        # Whoever may see the bundle may see how its price moved.
        return request.user.has_perm("catalog.view_bundle")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")

    @display(description="old price")
    def display_old_price(self, obj):
        return ksh(obj.old_price) if obj.old_price is not None else "— (new bundle)"

    @display(description="new price")
    def display_new_price(self, obj):
        return ksh(obj.new_price)


def _bundles_table(bundles) -> dict:
    return {
        "title": f"{len(bundles)} bundle(s)",
        "headers": ["Bundle", "Category", "Price", "On sale"],
        "rows": [
            [b.name, b.get_category_display(), ksh(b.price), "yes" if b.active else "retired"]
            for b in bundles
        ],
    }


@admin.register(Bundle)
class BundleAdmin(ModelAdmin, ImportExportModelAdmin):
    form = BundleAdminForm
    resource_classes = [BundleResource]
    import_form_class = BundleImportForm
    import_template_name = "admin/catalog/bundle/import.html"
    import_formats = IMPORT_FORMATS
    export_formats = EXPORT_FORMATS
    export_form_class = BundleExportForm

    list_display = (
        "name",
        "category",
        "display_data",
        "display_validity",
        "display_price",
        "display_order",
        "active",
        "featured",
    )
    list_display_links = ("name",)
    list_editable = ("display_order",)
    list_filter = ("category", "active", "featured", ("price", RangeNumericFilter))
    list_filter_submit = True
    search_fields = ("name", "slug")
    ordering = ("category", "display_order", "price")
    list_per_page = 50
    inlines = [BundlePriceChangeInline]
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "category", "description")}),
        ("What the customer gets", {"fields": ("data_mb", "validity_hours", "price")}),
        ("On the storefront", {"fields": ("active", "featured", "display_order")}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ["collapse"]}),
    )
    actions = ["activate_selected", "deactivate_selected", "feature_selected", "unfeature_selected"]
    actions_detail = ["retire_bundle"]

    def get_fieldsets(self, request, obj=None):
        # The "Save anyway" tick shows only on a posted form whose price another active bundle has.
        fieldsets = super().get_fieldsets(request, obj)
        if request.method == "POST" and self._posted_clash(request, obj):
            # Right under the price it is about.
            at = 2 if len(fieldsets) > 2 else len(fieldsets)
            fieldsets = (*fieldsets[:at], ("Price clash", {"fields": ("save_anyway",)}), *fieldsets[at:])
        return fieldsets

    def _posted_clash(self, request, obj) -> str:
        try:
            price = Bundle._meta.get_field("price").to_python(request.POST.get("price"))
        except ValidationError:
            return ""
        active = "active" in request.POST
        return price_clash_for(price=price, active=active, bundle_pk=getattr(obj, "pk", None))

    # ---- permissions -----------------------------------------------------------------------
    def has_delete_permission(self, request, obj=None):
        # A bundle customers ordered stays: the orders point at it. Retire it instead.
        if obj is not None and obj.orders.exists():
            return False
        return super().has_delete_permission(request, obj)

    def has_import_permission(self, request):
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request):
        # The catalogue is public (it is the storefront); anyone who may view it may export it.
        return self.has_view_permission(request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Bulk delete would trip over orders; deleting is one bundle at a time, from its page.
        actions.pop("delete_selected", None)
        return actions

    def add_data_read_fail_error_to_form(self, form, e):
        # A file refused by the upload limits says why, in words, not as an exception name.
        if isinstance(e, UploadRefused):
            form.add_error("import_file", e.message)
            return
        super().add_data_read_fail_error_to_form(form, e)

    def get_import_data_kwargs(self, *args, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        # All or nothing: a row that fails validation on the final run undoes the whole file.
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    # ---- columns ---------------------------------------------------------------------------
    @display(description="data", ordering="data_mb")
    def display_data(self, obj):
        return obj.data_label

    @display(description="validity", ordering="validity_hours")
    def display_validity(self, obj):
        return obj.validity_label

    @display(description="price", ordering="price")
    def display_price(self, obj):
        return ksh(obj.price)

    # ---- writes go through services --------------------------------------------------------
    def save_model(self, request, obj, form, change):
        bundle_save(bundle=obj, changed_by=request.user, source="admin")

    def delete_model(self, request, obj):
        bundle_delete(bundle=obj, deleted_by=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        bundle = self.get_object(request, object_id)
        if bundle is not None and self.has_change_permission(request, bundle) and bundle.orders.exists():
            self.message_user(request, BundleHasOrders().message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:catalog_bundle_change", args=[bundle.pk]))
        try:
            return super().delete_view(request, object_id, extra_context)
        except BundleHasOrders as e:  # an order arrived between the page and the click
            self.message_user(request, e.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:catalog_bundle_change", args=[object_id]))

    # ---- confirmation page shared by the actions -------------------------------------------
    def _confirm(
        self, request, *, bundles, question, confirm_label, action_name=None, explanation="", warning=""
    ):
        return confirm_page(
            self,
            request,
            title="Please confirm",
            question=question,
            intro=explanation,
            warning=warning,
            tables=[_bundles_table(bundles)],
            confirm_label=confirm_label,
            action_name=action_name,
            selected=[b.pk for b in bundles],
            cancel_url=reverse("admin:catalog_bundle_changelist")
            if action_name
            else reverse("admin:catalog_bundle_change", args=[bundles[0].pk]),
        )

    def _bulk(self, request, queryset, *, service, value, verb, question, label, action_name, warn=None):
        bundles = list(queryset.order_by("category", "display_order", "price"))
        if not confirmed(request):
            return self._confirm(
                request,
                bundles=bundles,
                question=question,
                confirm_label=label,
                action_name=action_name,
                warning=warn(bundles) if warn else "",
            )
        try:
            count = service(bundles=bundles, changed_by=request.user, **value)
        except ValidationError as e:
            self.message_user(request, "; ".join(e.messages), messages.ERROR)
            return None
        self.message_user(request, BULK_DONE.format(count=count, total=len(bundles), verb=verb))
        return None

    @action(description="Show selected bundles on the storefront", permissions=["change"])
    def activate_selected(self, request, queryset):
        return self._bulk(
            request,
            queryset,
            service=bundles_set_active,
            value={"active": True},
            verb="now on the storefront",
            question="Show these bundles on the storefront? Customers can buy them straight away.",
            label="Yes, activate",
            action_name="activate_selected",
            warn=lambda bundles: " ".join(c.message for c in price_clashes_on_activation(bundles=bundles)),
        )

    @action(description="Hide selected bundles from the storefront", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        return self._bulk(
            request,
            queryset,
            service=bundles_set_active,
            value={"active": False},
            verb="hidden from the storefront",
            question="Hide these bundles from the storefront? Customers will no longer be able to buy them.",
            label="Yes, deactivate",
            action_name="deactivate_selected",
        )

    @action(description="Mark selected bundles featured", permissions=["change"])
    def feature_selected(self, request, queryset):
        return self._bulk(
            request,
            queryset,
            service=bundles_set_featured,
            value={"featured": True},
            verb="now featured",
            question="Highlight these bundles on the storefront?",
            label="Yes, feature",
            action_name="feature_selected",
        )

    @action(description="Stop featuring selected bundles", permissions=["change"])
    def unfeature_selected(self, request, queryset):
        return self._bulk(
            request,
            queryset,
            service=bundles_set_featured,
            value={"featured": False},
            verb="no longer featured",
            question="Stop highlighting these bundles on the storefront?",
            label="Yes, unfeature",
            action_name="unfeature_selected",
        )

    @action(description="Retire", icon="archive", permissions=["change"], url_path="retire")
    def retire_bundle(self, request, object_id):
        bundle = get_object_or_404(Bundle, pk=object_id)
        change_url = reverse("admin:catalog_bundle_change", args=[bundle.pk])
        if not confirmed(request):
            return self._confirm(
                request,
                bundles=[bundle],
                question=f"Retire “{bundle.name}”?",
                explanation="It leaves the storefront; its orders and price history are kept. "
                "You can make it active again later.",
                confirm_label="Yes, retire",
            )
        if bundle_retire(bundle=bundle, changed_by=request.user):
            self.message_user(request, RETIRED.format(name=bundle.name), messages.SUCCESS)
        else:
            self.message_user(request, ALREADY_RETIRED.format(name=bundle.name), messages.WARNING)
        return HttpResponseRedirect(change_url)


@admin.register(BundlePriceChange)
class BundlePriceChangeAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Every price a bundle has had. Read-only for everyone: bundle_save writes it."""

    list_display = ("changed_at", "bundle", "display_old_price", "display_new_price", "changed_by", "source")
    list_filter = ("source", "bundle__category")
    list_filter_submit = True
    search_fields = ("bundle__name", "bundle__slug")
    list_select_related = ("bundle", "changed_by")
    paginator = InfinitePaginator
    show_full_result_count = False

    @display(description="old price")
    def display_old_price(self, obj):
        return ksh(obj.old_price) if obj.old_price is not None else "—"

    @display(description="new price")
    def display_new_price(self, obj):
        return ksh(obj.new_price)
