from decimal import Decimal

import factory

from catalog.models import Bundle, BundleCategory


class BundleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bundle

    name = factory.Sequence(lambda n: f"Test bundle {n}")
    slug = factory.Sequence(lambda n: f"test-bundle-{n}")
    category = BundleCategory.DAILY
    data_mb = 1024
    validity_hours = 24
    price = Decimal("100")
    active = True
    featured = False
    display_order = 0


def order_for(bundle):
    """A real order pointing at `bundle` (what stops a bundle being deleted)."""
    from ledger.models import Order

    return Order.objects.create(
        bundle=bundle, price=bundle.price, recipient_msisdn="254712345678", channel="till"
    )
