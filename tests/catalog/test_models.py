from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from catalog.models import Bundle
from tests.catalog.factories import BundleFactory

pytestmark = pytest.mark.django_db


def test_price_with_cents_fails_validation():
    bundle = BundleFactory.build(price=Decimal("99.50"))
    with pytest.raises(ValidationError) as e:
        bundle.full_clean()
    assert "price" in e.value.message_dict


def test_price_with_cents_is_refused_by_the_database():
    bundle = BundleFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Bundle.objects.filter(pk=bundle.pk).update(price=Decimal("99.50"))


def test_zero_price_is_refused_by_the_database():
    bundle = BundleFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Bundle.objects.filter(pk=bundle.pk).update(price=Decimal("0"))


def test_name_is_unique():
    BundleFactory(name="Daily 1GB")
    with pytest.raises(IntegrityError), transaction.atomic():
        BundleFactory(name="Daily 1GB")


def test_storefront_order_is_hourly_daily_weekly_monthly_then_display_order():
    monthly = BundleFactory(category="monthly", display_order=0)
    weekly = BundleFactory(category="weekly", display_order=0)
    daily_second = BundleFactory(category="daily", display_order=2)
    daily_first = BundleFactory(category="daily", display_order=1, price=Decimal("500"))
    hourly = BundleFactory(category="hourly")
    BundleFactory(category="daily", active=False)
    assert list(Bundle.objects.for_storefront()) == [hourly, daily_first, daily_second, weekly, monthly]


@pytest.mark.parametrize(
    "data_mb, validity_hours, data_label, validity_label",
    [(500, 1, "500MB", "1 hour"), (2048, 24, "2GB", "24 hours"), (8960, 168, "8.75GB", "7 days")],
)
def test_labels(data_mb, validity_hours, data_label, validity_label):
    bundle = BundleFactory.build(data_mb=data_mb, validity_hours=validity_hours)
    assert bundle.data_label == data_label
    assert bundle.validity_label == validity_label
