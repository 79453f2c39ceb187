"""Forms agents fill in on the order pages."""

from __future__ import annotations

from django import forms
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from catalog.models import Bundle
from console.kernel.money import ksh
from console.kernel.phones import InvalidPhoneNumber, normalise_msisdn


class BundleChoiceField(forms.ModelChoiceField):
    """Bundles as an agent quotes them to a customer: what it is, how long it lasts, the price."""

    def label_from_instance(self, obj: Bundle) -> str:
        parts = [obj.name]
        if obj.data_label.lower() not in obj.name.lower().replace(" ", ""):
            parts.append(obj.data_label)
        parts.append(obj.validity_label)
        return f"{' · '.join(parts)} — {ksh(obj.price)}"


class StkPushForm(forms.Form):
    """An agent sends a PIN prompt for a customer: the price always comes from the catalogue."""

    bundle = BundleChoiceField(
        queryset=Bundle.objects.for_storefront(),
        widget=UnfoldAdminSelectWidget,
        empty_label="Choose a bundle",
    )
    phone_number = forms.CharField(
        label="M-Pesa phone (pays)",
        max_length=32,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "0712 345 678", "inputmode": "tel"}),
    )
    recipient_phone = forms.CharField(
        label="Load the bundle on",
        max_length=32,
        required=False,
        help_text="Leave empty to load it on the paying phone.",
        widget=UnfoldAdminTextInputWidget(
            attrs={"placeholder": "same as the paying phone", "inputmode": "tel"}
        ),
    )

    def _phone(self, name: str) -> str:
        value = self.cleaned_data.get(name, "")
        if not value:
            return ""
        try:
            return normalise_msisdn(value)
        except InvalidPhoneNumber as exc:
            raise forms.ValidationError(str(exc))

    def clean_phone_number(self):
        return self._phone("phone_number")

    def clean_recipient_phone(self):
        return self._phone("recipient_phone")


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=255,
        required=False,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "e.g. customer asked to stop"}),
    )
