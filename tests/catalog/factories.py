from decimal import Decimal

import factory

from catalog.models import Bundle, BundleCategory


class BundleFactory(factory.django.DjangoModelFactory):
    """The one bundle factory for every app's tests: a 2 GB daily bundle at Ksh 150."""

    class Meta:
        model = Bundle
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Test bundle {n}")
    slug = factory.Sequence(lambda n: f"test-bundle-{n}")
    category = BundleCategory.DAILY
    data_mb = 2048
    validity_hours = 24
    price = Decimal("150.00")
    active = True
    featured = False
    display_order = 0


def order_for(bundle):
    """A real order pointing at `bundle` (what stops a bundle being deleted)."""
    from ledger.models import Order

    return Order.objects.create(
        bundle=bundle, price=bundle.price, recipient_msisdn="254712345678", channel="till"
    )
