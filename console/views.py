"""Console pages outside any one model: find anything, customer timeline. HTTP only."""

import sys

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db import InterfaceError, OperationalError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.defaults import server_error as django_server_error

from console import selectors
from console.middleware import unavailable_response


def _page(request, template, title, **context):
    return TemplateResponse(
        request, template, {**admin.site.each_context(request), "title": title, **context}
    )


@staff_member_required
def find(request):
    result = selectors.find_anything(request.GET.get("q", ""))
    hits = sum(len(result[k]) for k in ("orders", "claims", "receipts", "callbacks"))
    return _page(request, "console/find.html", "Find anything", result=result, hits=hits)


@staff_member_required
def customer(request, msisdn):
    normalised = selectors._as_msisdn(msisdn)
    if normalised is None:
        return _page(
            request, "console/customer.html", "Customer", error="Not a Kenyan phone number.", events=[]
        )
    if normalised != msisdn:
        return redirect("console_customer", msisdn=normalised)
    events = selectors.customer_timeline(normalised)
    return _page(request, "console/customer.html", f"Customer {normalised}", msisdn=normalised, events=events)


def server_error(request, template_name="500.html"):
    """handler500: an unreachable database is a 503 with Retry-After wherever it was raised."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        return unavailable_response(request)
    return django_server_error(request, template_name)
