"""The public storefront: the bundle list and the pay page (STK push or Buy Goods till)."""

from django.conf import settings
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from catalog.selectors import (
    bundle_by_slug,
    ksh,
    storefront_sections,
    whatsapp_claim_text,
    whatsapp_link,
)

STK_COMING_SOON = "STK payments are coming soon — pay via till below."
BUNDLE_RETIRED = "This bundle is no longer sold"
BUNDLE_UNKNOWN = "We could not find that bundle"


def stk_push_url() -> str | None:
    """The STK API's URL, or None while that endpoint is not installed (the form stays disabled)."""
    try:
        return reverse("ledger:stk_push")
    except NoReverseMatch:
        return None


@require_safe
def storefront(request):
    return render(request, "catalog/storefront.html", {"sections": storefront_sections()})


@require_safe
@ensure_csrf_cookie  # pay.js posts to the STK API with this cookie's token
def pay(request, slug):
    bundle = bundle_by_slug(slug=slug)
    if bundle is None or not bundle.active:
        return not_sold(request, bundle=bundle)
    text = whatsapp_claim_text(bundle=bundle, till_number=settings.TILL_NUMBER)
    return render(
        request,
        "catalog/pay.html",
        {
            "bundle": bundle,
            "amount": int(bundle.price),
            "amount_label": ksh(bundle.price),
            "stk_url": stk_push_url(),
            "stk_coming_soon": STK_COMING_SOON,
            # After this long without an answer the page explains the wait (and offers a resend when safe).
            "wait_hint_ms": int(settings.STK_WAIT_HINT_SECONDS * 1000),
            "whatsapp_text": text,
            "whatsapp_url": whatsapp_link(number=settings.SUPPORT_WHATSAPP, text=text),
        },
    )


def not_sold(request, *, bundle=None):
    """A link to a retired bundle is 410 Gone (it will not come back); an unknown one is 404.
    Both in the storefront's style, pointing the customer at the bundles on sale."""
    retired = bundle is not None
    context = {"bundle": bundle, "heading": BUNDLE_RETIRED if retired else BUNDLE_UNKNOWN}
    return render(request, "catalog/not_sold.html", context, status=410 if retired else 404)
