"""Every catalogue write: bundles saved from the admin or an import, retired, (de)activated, deleted.

Each service is atomic and writes its audit row in the same transaction. A price change (or a new
bundle) always leaves a BundlePriceChange row, whichever path saved it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from catalog.models import Bundle, BundlePriceChange
from console.kernel.audit import AuditAction, audit_record
from console.kernel.exceptions import DomainError

# Fields whose before/after go into the audit trail.
AUDITED_FIELDS = (
    "slug",
    "name",
    "category",
    "data_mb",
    "validity_hours",
    "price",
    "active",
    "featured",
    "display_order",
    "description",
)

BUNDLE_HAS_ORDERS = (
    "This bundle has orders, so it cannot be deleted: the orders must keep pointing at it. "
    "Retire it instead (it leaves the storefront and keeps its history)."
)


class BundleHasOrders(DomainError):
    """This bundle has orders, so it cannot be deleted."""

    def __init__(self, message: str = BUNDLE_HAS_ORDERS):
        super().__init__(message)


def _user_or_none(user):
    return user if getattr(user, "pk", None) else None


def _snapshot(bundle: Bundle) -> dict:
    return {f: getattr(bundle, f) for f in AUDITED_FIELDS}


@transaction.atomic
def bundle_save(*, bundle: Bundle, changed_by, source: str = "admin") -> Bundle:
    """Create or update `bundle` (validated with full_clean) and record what changed.

    Atomic: the bundle row, its BundlePriceChange (on create, or when the price moved) and the
    audit row commit together or not at all. The stored row is locked while we compare, so two
    concurrent edits each record the price they actually replaced. Raises ValidationError for an
    invalid bundle (e.g. a price with cents); nothing is saved then.
    """
    old = None
    if bundle.pk:
        old = Bundle.objects.select_for_update().filter(pk=bundle.pk).first()
    bundle.full_clean()
    bundle.save()

    user = _user_or_none(changed_by)
    if old is None or old.price != bundle.price:
        BundlePriceChange.objects.create(
            bundle=bundle,
            old_price=old.price if old else None,
            new_price=bundle.price,
            changed_by=user,
            changed_at=timezone.now(),
            source=source,
        )

    after = _snapshot(bundle)
    if old is None:
        audit_record(
            actor=changed_by, action=AuditAction.BUNDLE_CREATED, obj=bundle, after=after, reason=source
        )
    else:
        before = _snapshot(old)
        changed = [f for f in AUDITED_FIELDS if before[f] != after[f]]
        if changed:
            audit_record(
                actor=changed_by,
                action=AuditAction.BUNDLE_CHANGED,
                obj=bundle,
                before={f: before[f] for f in changed},
                after={f: after[f] for f in changed},
                reason=source,
            )
    return bundle


def _bundles_update(*, bundles: Iterable[Bundle], changed_by, **values) -> int:
    """Apply `values` to each bundle through bundle_save; returns how many actually changed."""
    ids = sorted(b.pk for b in bundles)
    changed = 0
    # Lock in a stable (id) order so two bulk actions cannot deadlock each other.
    for bundle in Bundle.objects.select_for_update().filter(pk__in=ids).order_by("pk"):
        if all(getattr(bundle, k) == v for k, v in values.items()):
            continue
        for k, v in values.items():
            setattr(bundle, k, v)
        bundle_save(bundle=bundle, changed_by=changed_by, source="admin")
        changed += 1
    return changed


@transaction.atomic
def bundles_set_active(*, bundles: Iterable[Bundle], active: bool, changed_by) -> int:
    """Show (active=True) or hide (False) bundles on the storefront. Idempotent; returns the count changed."""
    return _bundles_update(bundles=bundles, changed_by=changed_by, active=active)


@transaction.atomic
def bundles_set_featured(*, bundles: Iterable[Bundle], featured: bool, changed_by) -> int:
    """Highlight (or stop highlighting) bundles on the storefront. Idempotent; returns the count changed."""
    return _bundles_update(bundles=bundles, changed_by=changed_by, featured=featured)


@transaction.atomic
def bundle_retire(*, bundle: Bundle, changed_by) -> bool:
    """Take a bundle off the storefront for good, keeping it and its orders. Idempotent.

    Returns True if it was active and is now retired, False if it was already retired.
    """
    return _bundles_update(bundles=[bundle], changed_by=changed_by, active=False) == 1


@transaction.atomic
def bundle_delete(*, bundle: Bundle, deleted_by) -> None:
    """Delete a bundle nobody ordered (a typo, a test). Raises BundleHasOrders otherwise."""
    locked = Bundle.objects.select_for_update().get(pk=bundle.pk)
    if locked.orders.exists():
        raise BundleHasOrders()
    audit_record(actor=deleted_by, action=AuditAction.BUNDLE_DELETED, obj=locked, before=_snapshot(locked))
    locked.delete()
