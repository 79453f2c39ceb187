"""Console pages outside any one model: find anything, customer timeline. HTTP only.

Each page shows only the sections the viewer may see in the admin itself (console.access); a
user who may see none of them is refused.
"""

import sys

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.shortcuts import redirect
from django.views.defaults import server_error as django_server_error

from console import access, selectors
from console.kernel.confirm import site_page
from console.kernel.phones import phone_display
from console.middleware import unavailable_response


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
    if normalised is None:
        return site_page(
            request, "console/customer.html", "Customer", error="Not a Kenyan phone number.", events=[]
        )
    if normalised != msisdn:
        return redirect("console_customer", msisdn=normalised)
    events = selectors.customer_timeline(normalised, sections=sections)
    for event in events:  # numbers as staff read them: 0712 345 678
        recipient = getattr(event["obj"], "recipient_msisdn", "")
        event["recipient"] = phone_display(recipient, empty="?")
    phone = phone_display(normalised)
    return site_page(request, "console/customer.html", f"Customer {phone}", msisdn=phone, events=events)


def server_error(request, template_name="500.html"):
    """handler500: an unreachable database is a 503 with Retry-After wherever it was raised."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        return unavailable_response(request)
    return django_server_error(request, template_name)
