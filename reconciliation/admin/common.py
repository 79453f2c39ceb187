"""Helpers shared by the reconciliation admin pages."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from console.kernel.confirm import admin_page, confirm_page

FORM_PAGE = "admin/reconciliation/form_page.html"
# Extends the shared admin/confirm.html: the same page, the evidence shown before the question.
CONFIRM_WITH_EVIDENCE = "admin/reconciliation/confirm_with_evidence.html"
AGE_AMBER_MINUTES = 30
AGE_RED_MINUTES = 120
AGE_COLOURS = {"fresh": "info", "amber": "warning", "red": "danger", "done": "success"}


def age_text(since: dt.datetime, now: dt.datetime | None = None) -> tuple[str, str]:
    """("fresh"|"amber"|"red", "12 min" / "3 h 5 min" / "2 d") for an age badge."""
    minutes = max(0, int(((now or timezone.now()) - since).total_seconds() // 60))
    if minutes < 60:
        text = f"{minutes} min"
    elif minutes < 48 * 60:
        text = f"{minutes // 60} h {minutes % 60} min"
    else:
        text = f"{minutes // (24 * 60)} d"
    level = "red" if minutes > AGE_RED_MINUTES else "amber" if minutes > AGE_AMBER_MINUTES else "fresh"
    return level, text


def right(value) -> str:
    return format_html('<span class="block text-right tabular-nums">{}</span>', value)


def form_page(model_admin, request, title: str, **context) -> TemplateResponse:
    """A form that asks for input (paste a message, upload a file, pick a day): not a confirmation."""
    return admin_page(model_admin, request, FORM_PAGE, title, **context)


def confirm_with_evidence(
    model_admin, request, *, message_text: str = "", blocks: str = "", blocks_title: str = "", **kwargs
) -> TemplateResponse:
    """The shared confirmation page (console.kernel.confirm.confirm_page) with what the person must
    read before answering: the customer's message as written, or a block of raw figures."""
    response = confirm_page(model_admin, request, **kwargs)
    response.template_name = CONFIRM_WITH_EVIDENCE
    response.context_data.update(message_text=message_text, blocks=blocks, blocks_title=blocks_title)
    return response


class DiedFilter(admin.SimpleListFilter):
    """Jobs whose worker died: still marked running, no heartbeat for HEARTBEAT_STALE_SECONDS."""

    title = "worker"
    parameter_name = "worker"

    def lookups(self, request, model_admin):
        return [("died", "Died (no heartbeat)")]

    def queryset(self, request, queryset):
        if self.value() == "died":
            return queryset.died()
        return queryset
