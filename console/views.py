"""Console pages outside any one model: find anything, customer timeline. HTTP only."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from console import selectors


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
