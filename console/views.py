"""Console pages outside any one model: find anything, customer timeline. HTTP only.

Each page shows only the sections the viewer may see in the admin itself (console.access); a
user who may see none of them is refused.
"""

import sys

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.defaults import server_error as django_server_error

from console import access, selectors
from console.kernel.confirm import site_page
from console.kernel.phones import phone_display
from console.middleware import unavailable_response

FORBIDDEN_TITLE = "You don't have access to this page"


def _breadcrumbs(request, *titles_and_links) -> None:
    """The header's breadcrumbs: Dashboard, then (title, link) pairs; the last has no link.

    unfold draws the header from the request alone (templates/unfold/helpers/header_title.html
    reads this attribute), so a page that belongs to no model leaves its trail there."""
    trail = [{"title": "Dashboard", "link": reverse("admin:index")}]
    request.console_breadcrumbs = trail + [{"title": title, "link": link} for title, link in titles_and_links]


def _sections_or_403(request, sections):
    visible = access.visible_sections(request.user, sections)
    if not visible:
        raise PermissionDenied
    return visible


@staff_member_required
def find(request):
    sections = _sections_or_403(request, access.FIND_SECTIONS)
    result = selectors.find_anything(request.GET.get("q", ""), sections=sections)
    hits = sum(len(result[k]) for k in access.FIND_SECTIONS)
    can_timeline = bool(access.visible_sections(request.user, access.TIMELINE_SECTIONS))
    _breadcrumbs(request, ("Find anything", None))
    return site_page(
        request,
        "console/find.html",
        "Find anything",
        result=result,
        hits=hits,
        timeline_msisdn=result["msisdn"] if can_timeline else None,
    )


@staff_member_required
def customer(request, msisdn):
    sections = _sections_or_403(request, access.TIMELINE_SECTIONS)
    normalised = selectors._as_msisdn(msisdn)
    find = ("Find anything", reverse("console_find"))
    if normalised is None:
        _breadcrumbs(request, find, ("Customer", None))
        return site_page(
            request,
            "console/customer.html",
            "Customer",
            error="Not a Kenyan phone number.",
            events=[],
        )
    if normalised != msisdn:
        return redirect("console_customer", msisdn=normalised)
    events = selectors.customer_timeline(normalised, sections=sections)
    phone = phone_display(normalised)
    title = f"Customer {phone}"
    _breadcrumbs(request, find, (title, None))
    return site_page(request, "console/customer.html", title, msisdn=phone, events=events)


def server_error(request, template_name="500.html"):
    """handler500: an unreachable database is a 503 with Retry-After wherever it was raised."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        return unavailable_response(request)
    return django_server_error(request, template_name)


def permission_denied(request, exception=None):
    """handler403: the console's page saying who may use what was refused (its roles), not a bare 403."""
    user = request.user
    context = {
        "roles": access.roles_with(access.permissions_needed(request, exception)),
        "my_roles": sorted(user.groups.values_list("name", flat=True)) if user.is_authenticated else [],
    }
    if user.is_authenticated and user.is_active and user.is_staff:
        return site_page(request, "console/forbidden.html", FORBIDDEN_TITLE, status=403, **context)
    return render(request, "console/forbidden_public.html", {"title": FORBIDDEN_TITLE, **context}, status=403)
