from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Bundle, BundlePriceChange
from catalog.services import (
    BUNDLE_HAS_ORDERS,
    BundleHasOrders,
    bundle_delete,
    bundle_retire,
    bundle_save,
    bundles_set_active,
    bundles_set_featured,
)
from console.models import AuditEvent
from tests.catalog.factories import BundleFactory, order_for

pytestmark = pytest.mark.django_db


def test_creating_a_bundle_records_its_first_price(manager):
    bundle = bundle_save(bundle=BundleFactory.build(price=Decimal("150")), changed_by=manager, source="admin")
    change = bundle.price_changes.get()
    assert (change.old_price, change.new_price, change.changed_by, change.source) == (
        None,
        Decimal("150"),
        manager,
        "admin",
    )
    assert AuditEvent.objects.filter(action="bundle.created", object_id=str(bundle.pk)).exists()


def test_changing_the_price_records_old_new_who_and_when(manager):
    bundle = bundle_save(bundle=BundleFactory.build(price=Decimal("150")), changed_by=manager)
    bundle.price = Decimal("180")
    bundle_save(bundle=bundle, changed_by=manager, source="import")
    latest = bundle.price_changes.first()
    assert (latest.old_price, latest.new_price, latest.source) == (Decimal("150"), Decimal("180"), "import")
    assert latest.changed_at is not None
    audit = AuditEvent.objects.get(action="bundle.changed", object_id=str(bundle.pk))
    assert audit.before == {"price": "150.00"} and audit.after == {"price": "180"}
    assert audit.actor == manager


def test_editing_other_fields_records_no_price_change(manager):
    bundle = bundle_save(bundle=BundleFactory.build(), changed_by=manager)
    bundle.description = "Now with a description"
    bundle_save(bundle=bundle, changed_by=manager)
    assert bundle.price_changes.count() == 1
    assert AuditEvent.objects.get(action="bundle.changed").after == {"description": "Now with a description"}


def test_saving_unchanged_bundle_writes_no_audit(manager):
    bundle = bundle_save(bundle=BundleFactory.build(), changed_by=manager)
    bundle_save(bundle=Bundle.objects.get(pk=bundle.pk), changed_by=manager)
    assert not AuditEvent.objects.filter(action="bundle.changed").exists()


def test_invalid_price_saves_nothing(manager):
    bundle = bundle_save(bundle=BundleFactory.build(price=Decimal("150")), changed_by=manager)
    bundle.price = Decimal("150.50")
    with pytest.raises(ValidationError):
        bundle_save(bundle=bundle, changed_by=manager)
    assert Bundle.objects.get(pk=bundle.pk).price == Decimal("150")
    assert bundle.price_changes.count() == 1


def test_set_active_is_idempotent_and_counts_changes(manager):
    on, off = BundleFactory(active=True), BundleFactory(active=False)
    assert bundles_set_active(bundles=[on, off], active=False, changed_by=manager) == 1
    assert bundles_set_active(bundles=[on, off], active=False, changed_by=manager) == 0
    assert not Bundle.objects.filter(active=True).exists()
    assert AuditEvent.objects.filter(action="bundle.changed").count() == 1


def test_set_featured(manager):
    bundle = BundleFactory()
    assert bundles_set_featured(bundles=[bundle], featured=True, changed_by=manager) == 1
    bundle.refresh_from_db()
    assert bundle.featured


def test_retire_hides_the_bundle_and_is_idempotent(manager):
    bundle = BundleFactory()
    assert bundle_retire(bundle=bundle, changed_by=manager) is True
    assert bundle_retire(bundle=bundle, changed_by=manager) is False
    assert not Bundle.objects.for_storefront().filter(pk=bundle.pk).exists()


def test_delete_refuses_a_bundle_with_orders(manager):
    bundle = BundleFactory()
    order_for(bundle)
    with pytest.raises(BundleHasOrders) as e:
        bundle_delete(bundle=bundle, deleted_by=manager)
    assert e.value.message == BUNDLE_HAS_ORDERS
    assert Bundle.objects.filter(pk=bundle.pk).exists()


def test_delete_removes_an_unordered_bundle_and_audits(manager):
    bundle = BundleFactory()
    pk = bundle.pk
    bundle_delete(bundle=bundle, deleted_by=manager)
    assert not Bundle.objects.filter(pk=pk).exists()
    assert AuditEvent.objects.filter(action="bundle.deleted", object_id=str(pk)).exists()
    assert not BundlePriceChange.objects.filter(bundle_id=pk).exists()
