"""Catalogue reads shared by the storefront, the pay page and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from django.db.models import QuerySet

from catalog.models import Bundle, BundleCategory
from console.kernel.money import ksh


@dataclass(frozen=True)
class StorefrontSection:
    category: str
    label: str
    bundles: list[Bundle]


def bundles_for_storefront() -> QuerySet[Bundle]:
    return Bundle.objects.for_storefront().only(
        "slug", "name", "category", "data_mb", "validity_hours", "price", "featured", "description"
    )


def storefront_sections() -> list[StorefrontSection]:
    """Active bundles grouped Hourly, Daily, Weekly, Monthly; empty categories left out."""
    by_category: dict[str, list[Bundle]] = {}
    for bundle in bundles_for_storefront():
        by_category.setdefault(bundle.category, []).append(bundle)
    return [
        StorefrontSection(category=value, label=label, bundles=by_category[value])
        for value, label in BundleCategory.choices
        if value in by_category
    ]


def bundle_by_slug(*, slug: str) -> Bundle | None:
    """The bundle a /pay/ link names, on sale or retired (the page says which); None if unknown."""
    return Bundle.objects.filter(slug=slug).first()


def whatsapp_claim_text(*, bundle: Bundle, till_number: str) -> str:
    """The message a till payer sends us: our agents (and the parser) read these lines."""
    return (
        f"Hi, I have paid till {till_number} for a data bundle.\n"
        f"Bundle: {bundle.name}\n"
        f"Amount: {ksh(bundle.price)}\n"
        f"Recipient Number: \n"
        f"M-Pesa Code: "
    )


def whatsapp_link(*, number: str, text: str) -> str:
    return f"https://wa.me/{number}?text={quote(text, safe='')}"
