"""How the claims queue and the suspense list are searched and filtered (django-filter FilterSets).

The admin's search box and list filters hand their value to these, so the rules live in one
place: a claim is found by its M-Pesa code (normalised) or a phone number in any Kenyan form,
exact and indexed; a till receipt by its code or the start of it, and by what it paid for.
"""

from __future__ import annotations

import re

import django_filters
from django.db.models import Q

from console.kernel.phones import try_normalise_msisdn
from reconciliation.models import Claim, TillReceipt
from reconciliation.parsers import normalise_code

_CODEISH_RE = re.compile(r"^[A-Za-z0-9\s-]{8,14}$")
MATCHED_CHOICES = [
    ("no", "Unmatched (suspense)"),
    ("yes", "Matched to an order"),
    ("partly", "Partly used (money left unallocated)"),
]


class ClaimFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="M-Pesa code or phone number")

    class Meta:
        model = Claim
        fields = []

    def search(self, queryset, name, value):
        term = (value or "").strip()
        if not term:
            return queryset
        q = Q(pk__in=[])
        phone = try_normalise_msisdn(term)
        if phone:
            q |= Q(sender_msisdn=phone) | Q(recipient_msisdn=phone)
        code = normalise_code(term) if _CODEISH_RE.match(term) else None
        if code:
            q |= Q(code=code)
        elif not phone:
            q |= Q(code__startswith=term.upper().replace(" ", ""))
        return queryset.filter(q)


class TillReceiptFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Receipt")
    matched = django_filters.ChoiceFilter(choices=MATCHED_CHOICES, method="by_use")

    class Meta:
        model = TillReceipt
        fields = []

    def search(self, queryset, name, value):
        term = (value or "").strip().upper().replace(" ", "")
        return queryset.filter(code__startswith=term) if term else queryset

    def by_use(self, queryset, name, value):
        if value == "no":
            return queryset.unmatched()
        if value == "partly":
            return queryset.partly_used()
        if value == "yes":
            return queryset.filter(order__isnull=False)
        return queryset


def claims_search(queryset, term: str):
    """The claims in ``queryset`` whose code or phone matches ``term`` (the admin's search box)."""
    return ClaimFilter({"q": term}, queryset=queryset).qs


def receipts_search(queryset, term: str):
    return TillReceiptFilter({"q": term}, queryset=queryset).qs


def receipts_by_use(queryset, value: str | None):
    """Unmatched ("no"), matched ("yes") or partly used ("partly") receipts; all for anything else."""
    return TillReceiptFilter({"matched": value} if value else {}, queryset=queryset).qs
