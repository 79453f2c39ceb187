"""Links from any admin page to the console's customer timeline (by URL name, no app import)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html


def customer_link(msisdn: str, label: str | None = None) -> str:
    """An admin link from a phone number to its customer timeline ("—" when there is none)."""
    if not msisdn:
        return "—"
    url = reverse("console_customer", args=[msisdn])
    return format_html(
        '<a class="whitespace-nowrap text-primary-600 dark:text-primary-500" href="{}" '
        'title="Customer timeline">{}</a>',
        url,
        label or msisdn,
    )
