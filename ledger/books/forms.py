"""Forms finance fills in on the books pages: reasons, adjustments, exports, report dates."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from console.kernel.clock import today
from ledger.models import Account

ADJUSTMENT_UNBALANCED = "Debits ({debit}) and credits ({credit}) must be equal."
ADJUSTMENT_NEEDS_TWO_LINES = "Fill in at least two lines."
LINE_BOTH_SIDES = "Put an amount in debit or in credit, not both."
LINE_NO_AMOUNT = "Give a debit or a credit amount for this account."
LINE_NO_ACCOUNT = "Choose the account for this amount."
EXPORT_DATES_BACKWARDS = "The start date is after the end date."

ADJUSTMENT_LINES = 6


def _date_widget():
    return UnfoldAdminTextInputWidget(attrs={"type": "date"})


class ReasonForm(forms.Form):
    """A confirmation that a person means it, with the reason the books will keep."""

    reason = forms.CharField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        max_length=1000,
        help_text="Kept with the entry and in the audit trail.",
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason.")
        return reason


class DayForm(forms.Form):
    day = forms.DateField(label="Day (Nairobi)", widget=_date_widget(), required=False)

    def day_or_today(self):
        if self.is_valid() and self.cleaned_data.get("day"):
            return self.cleaned_data["day"]
        return today()


class AsOfForm(forms.Form):
    as_of = forms.DateField(
        label="Balances as of the end of (Nairobi)", widget=_date_widget(), required=False
    )

    def as_of_or_today(self):
        if self.is_valid() and self.cleaned_data.get("as_of"):
            return self.cleaned_data["as_of"]
        return today()


def _account_choices():
    return [("", "—")] + [(a.key, str(a)) for a in Account.objects.all()]


class AdjustmentForm(forms.Form):
    """A manual adjustment: up to ADJUSTMENT_LINES (account, debit, credit) rows, balanced."""

    memo = forms.CharField(max_length=200, required=False, widget=UnfoldAdminTextInputWidget())
    reason = forms.CharField(widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}), max_length=1000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = _account_choices()
        for i in range(ADJUSTMENT_LINES):
            self.fields[f"account_{i}"] = forms.ChoiceField(
                choices=choices, required=False, label="Account", widget=UnfoldAdminSelectWidget()
            )
            for side in ("debit", "credit"):
                self.fields[f"{side}_{i}"] = forms.DecimalField(
                    max_digits=14,
                    decimal_places=2,
                    min_value=Decimal("0.01"),
                    required=False,
                    label=side.title(),
                    widget=UnfoldAdminDecimalFieldWidget(attrs={"step": "0.01"}),
                )

    @property
    def line_rows(self):
        return [
            (self[f"account_{i}"], self[f"debit_{i}"], self[f"credit_{i}"]) for i in range(ADJUSTMENT_LINES)
        ]

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason.")
        return reason

    def clean(self):
        cleaned = super().clean()
        lines = []
        for i in range(ADJUSTMENT_LINES):
            account, debit, credit = (cleaned.get(f"{k}_{i}") for k in ("account", "debit", "credit"))
            if not account and debit is None and credit is None:
                continue
            if not account:
                self.add_error(f"account_{i}", LINE_NO_ACCOUNT)
            elif debit is not None and credit is not None:
                self.add_error(f"debit_{i}", LINE_BOTH_SIDES)
            elif debit is None and credit is None:
                self.add_error(f"debit_{i}", LINE_NO_AMOUNT)
            else:
                lines.append((account, debit if debit is not None else -credit))
        if self.errors:
            return cleaned
        if len(lines) < 2:
            raise forms.ValidationError(ADJUSTMENT_NEEDS_TWO_LINES)
        debit = sum((a for _, a in lines if a > 0), Decimal("0"))
        credit = -sum((a for _, a in lines if a < 0), Decimal("0"))
        if debit != credit:
            raise forms.ValidationError(
                ADJUSTMENT_UNBALANCED.format(debit=f"{debit:.2f}", credit=f"{credit:.2f}")
            )
        cleaned["lines"] = lines
        return cleaned


def _first_of_month():
    return today().replace(day=1)


class ExportForm(forms.Form):
    date_from = forms.DateField(label="From (Nairobi day)", widget=_date_widget(), initial=_first_of_month)
    date_to = forms.DateField(label="To (inclusive)", widget=_date_widget(), initial=today)
    accounts = forms.MultipleChoiceField(
        required=False,
        help_text="Leave empty for every account.",
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    channel = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), ("stk", "STK push"), ("till", "Till (manual)")],
        widget=UnfoldAdminSelectWidget(),
    )
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("xlsx", "XLSX")], widget=UnfoldAdminSelectWidget())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["accounts"].choices = [(a.key, str(a)) for a in Account.objects.all()]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("date_from") and cleaned.get("date_to") and cleaned["date_from"] > cleaned["date_to"]:
            raise forms.ValidationError(EXPORT_DATES_BACKWARDS)
        return cleaned
