"""Forms staff fill in on the reconciliation pages."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from catalog.models import Bundle
from console.kernel.money import ksh
from console.kernel.phones import InvalidPhoneNumber, normalise_msisdn
from console.kernel.uploads import human_size, limit
from reconciliation.services.replies import REJECT_REASON_LABELS, REJECT_REASONS

BUNDLE_NOT_OFFERED = "That bundle costs more than the receipt paid; pick one of the bundles offered."


def _phone(value: str) -> str:
    try:
        return normalise_msisdn(value)
    except InvalidPhoneNumber as exc:
        raise forms.ValidationError(str(exc))


class PasteMessageForm(forms.Form):
    sender = forms.CharField(
        label="Customer's WhatsApp number",
        max_length=32,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "0712 345 678", "inputmode": "tel"}),
    )
    text = forms.CharField(
        label="Message",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 6, "placeholder": "Paste the whole message here"}),
    )

    def clean_sender(self):
        return _phone(self.cleaned_data["sender"])


class WhatsAppUploadForm(forms.Form):
    file = forms.FileField(label="Chat export (.txt or .zip)", widget=UnfoldAdminFileFieldWidget)
    business_number = forms.CharField(
        label="Our WhatsApp number in this chat",
        required=False,
        max_length=32,
        help_text="Messages from this number make no claim. Defaults to the support number.",
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "0782 070 228", "inputmode": "tel"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            f"At most {human_size(limit('UPLOAD_CHAT_MAX_BYTES'))}; "
            f"the chat text at most {human_size(limit('UPLOAD_CHAT_TEXT_MAX_BYTES'))}."
        )

    def clean_business_number(self):
        value = self.cleaned_data.get("business_number")
        return _phone(value) if value else ""


class StatementUploadForm(forms.Form):
    file = forms.FileField(label="M-PESA statement export (.csv or .xlsx)", widget=UnfoldAdminFileFieldWidget)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            f"At most {human_size(limit('UPLOAD_STATEMENT_MAX_BYTES'))} "
            f"and {limit('UPLOAD_STATEMENT_MAX_ROWS'):,} rows."
        )


class TillSmsForm(forms.Form):
    text = forms.CharField(
        label="Till SMS",
        widget=UnfoldAdminTextareaWidget(
            attrs={
                "rows": 6,
                "placeholder": "QAI1S35S7Z Confirmed.on 18/1/22 at 3:57 PMKsh40.00 received from …",
            }
        ),
        help_text="One or more merchant-side M-PESA messages, as received on the till phone.",
    )


class VerifyClaimForm(forms.Form):
    receipt_code = forms.CharField(
        label="Till receipt",
        max_length=12,
        widget=UnfoldAdminTextInputWidget(attrs={"autocomplete": "off"}),
    )
    amount = forms.DecimalField(
        label="Re-type the amount on the receipt (KES)",
        max_digits=12,
        decimal_places=2,
        widget=UnfoldAdminTextInputWidget(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    bundle = forms.ModelChoiceField(
        queryset=Bundle.objects.for_storefront(),
        required=False,
        widget=UnfoldAdminSelectWidget,
        empty_label="The bundle whose price was paid",
        help_text=(
            "Needed only when the amount is not exactly one bundle's price. Only bundles the receipt "
            "pays for are offered; what it paid beyond the price stays unallocated on the receipt."
        ),
        error_messages={"invalid_choice": BUNDLE_NOT_OFFERED},
    )
    recipient = forms.CharField(
        label="Load the bundle on",
        max_length=32,
        widget=UnfoldAdminTextInputWidget(attrs={"inputmode": "tel"}),
    )

    def __init__(self, *args, offer: list[tuple[Bundle, Decimal]] | None = None, amount=None, **kwargs):
        """``offer``: the (bundle, price at payment time) pairs the receipt of ``amount`` pays for."""
        super().__init__(*args, **kwargs)
        if offer is not None:
            prices = {bundle.pk: price for bundle, price in offer}
            field = self.fields["bundle"]
            field.queryset = field.queryset.filter(pk__in=prices)
            field.label_from_instance = lambda b: bundle_offer_label(b, prices[b.pk], amount)

    def clean_recipient(self):
        return _phone(self.cleaned_data["recipient"])


def bundle_offer_label(bundle: Bundle, price: Decimal, amount: Decimal | None) -> str:
    """The option text: the bundle, its price when paid and what the receipt leaves over, e.g.
    "Daily 2GB, Ksh 150 (Ksh 30 unallocated)"."""
    left = (amount - price) if amount is not None else Decimal("0")
    return f"{bundle.name}, {ksh(price)}" + (f" ({ksh(left)} unallocated)" if left > 0 else "")


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "Why (the customer may be told this)"}),
    )


class RejectClaimForm(forms.Form):
    """Why a claim is rejected: the reason the customer is told (a polite sentence each, see
    services.replies.REJECT_REPLIES) and a note for staff that the customer never sees."""

    reply_reason = forms.ChoiceField(
        label="Reason (the customer gets a polite sentence for it)",
        choices=REJECT_REASONS,
        widget=UnfoldAdminSelectWidget,
    )
    reason = forms.CharField(
        label="Note for staff",
        max_length=500,
        required=False,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "What you checked (staff only)"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("reply_reason") == "other" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why in the note.")
        elif not (data.get("reason") or "").strip() and data.get("reply_reason"):
            data["reason"] = REJECT_REASON_LABELS[data["reply_reason"]]
        return data


class CloseDayForm(forms.Form):
    day = forms.DateField(widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))


class ReopenDayForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "e.g. a statement row arrived late"}),
        help_text="Required. Reopening lets entries for this day be booked on it again until you close it.",
    )
