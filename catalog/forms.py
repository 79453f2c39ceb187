"""The bundle form managers fill in the admin: a price another active bundle has needs a tick."""

from __future__ import annotations

from django import forms
from unfold.widgets import UnfoldBooleanWidget

from catalog.models import Bundle
from catalog.prices import price_clash_for

SAVE_ANYWAY = "Tick “Save anyway” below to keep this price."


class BundleAdminForm(forms.ModelForm):
    save_anyway = forms.BooleanField(
        label="Save anyway",
        required=False,
        widget=UnfoldBooleanWidget,
        help_text="I know till payments of this amount will need review.",
    )

    class Meta:
        model = Bundle
        fields = (
            "name",
            "slug",
            "category",
            "description",
            "data_mb",
            "validity_hours",
            "price",
            "active",
            "featured",
            "display_order",
        )

    def price_clash(self) -> str:
        """The clash this save would create (a new bundle, a new price or back on sale), or ""."""
        if self.instance.pk and not {"price", "active"} & set(self.changed_data):
            return ""
        return price_clash_for(
            price=self.cleaned_data.get("price"),
            active=self.cleaned_data.get("active", False),
            bundle_pk=self.instance.pk,
        )

    def clean(self):
        cleaned = super().clean()
        clash = self.price_clash()
        if clash and not cleaned.get("save_anyway"):
            self.add_error("price", f"{clash} {SAVE_ANYWAY}")
        return cleaned
