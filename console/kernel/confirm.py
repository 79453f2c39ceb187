"""One confirmation page for every state change an admin makes (and one page helper).

A state change is a POST: the first request (a GET from a button, or the POST of a bulk action
from the changelist) shows what will happen and asks; the answer comes back as a POST with
``confirmed=1``. Every admin action uses these two functions instead of its own template:

    if confirmed(request) and form.is_valid():
        ...call the service...
    return confirm_page(self, request, title=..., question=..., confirm_label=..., cancel_url=...)
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse

CONFIRM_TEMPLATE = "admin/confirm.html"


def confirmed(request) -> bool:
    """True when this request is the staff member's answer to a confirmation page."""
    return request.method == "POST" and bool(request.POST.get("confirmed"))


def site_page(
    request, template: str, title: str, *, status: int = 200, site=None, **context
) -> TemplateResponse:
    """Render `template` inside the admin layout (sidebar, header, messages): the one way a
    console page that belongs to no model (find, timeline, logins) is drawn."""
    site = site or admin.site
    return TemplateResponse(
        request, template, {**site.each_context(request), "title": title, **context}, status=status
    )


def admin_page(model_admin, request, template: str, title: str, **context) -> TemplateResponse:
    """Render `template` inside the admin layout for `model_admin` (its breadcrumbs and options)."""
    return site_page(request, template, title, site=model_admin.admin_site, opts=model_admin.opts, **context)


def confirm_page(
    model_admin,
    request,
    *,
    title: str,
    question: str,
    confirm_label: str,
    cancel_url: str,
    intro: str = "",
    warning: str = "",
    tables: Iterable[dict] = (),
    form=None,
    confirm_variant: str = "primary",
    action_name: str | None = None,
    selected: Iterable = (),
    hidden: dict | None = None,
    **context,
) -> TemplateResponse:
    """Ask before a change. `tables` are unfold tables ({"title", "headers", "rows"}) that show what
    the change touches; `form` collects a reason or a choice. For a changelist bulk action pass
    `action_name` and the `selected` primary keys so the answer reaches the same action again."""
    fields = dict(hidden or {})
    if action_name:
        fields["action"] = action_name
    return admin_page(
        model_admin,
        request,
        CONFIRM_TEMPLATE,
        title,
        question=question,
        confirm_label=confirm_label,
        confirm_variant=confirm_variant,
        cancel_url=cancel_url,
        intro=intro,
        warning=warning,
        tables=list(tables),
        form=form,
        hidden=fields,
        selected=[str(pk) for pk in selected] if action_name else [],
        action_checkbox_name=ACTION_CHECKBOX_NAME,
        **context,
    )
