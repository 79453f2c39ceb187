"""The price of a bundle at a moment: the bundle's price history (BundlePriceChange) read once.

The matcher and the verify decisions both ask "which bundles cost this amount when it was paid"
and "what did this bundle cost then"; the catalogue owns the answer.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from catalog.models import Bundle, BundlePriceChange
from console.kernel.money import ksh


@dataclass
class PriceBook:
    """Active bundles with their price history, loaded once (per matcher batch or decision)."""

    bundles: list[Bundle]
    changes: dict[int, list[BundlePriceChange]]

    @classmethod
    def load(cls) -> PriceBook:
        bundles = list(Bundle.objects.filter(active=True).order_by("pk"))
        changes: dict[int, list[BundlePriceChange]] = defaultdict(list)
        for change in BundlePriceChange.objects.filter(bundle__in=bundles).order_by("changed_at", "pk"):
            changes[change.bundle_id].append(change)
        return cls(bundles, changes)

    def price_at(self, bundle: Bundle, when: dt.datetime) -> Decimal:
        history = self.changes.get(bundle.pk, [])
        before = [c for c in history if c.changed_at <= when]
        if before:
            return before[-1].new_price
        after = [c for c in history if c.changed_at > when]
        if after and after[0].old_price is not None:
            return after[0].old_price
        return bundle.price

    def matching(self, amount: Decimal, when: dt.datetime) -> list[Bundle]:
        return [b for b in self.bundles if self.price_at(b, when) == amount]


# ---- price clashes: two active bundles at one price ---------------------------------------------

PRICE_CLASH = (
    "Another active bundle already costs {price}: {others}. Till payments of {price} will match "
    "{count} bundles, and every such claim will need review (an agent picks the bundle by hand)."
)
PRICE_CLASH_IN_CATALOGUE = (
    "{names} would all cost {price} and be on sale: till payments of {price} will match {count} "
    "bundles, and every such claim will need review (an agent picks the bundle by hand)."
)
_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def _count(n: int) -> str:
    return _COUNT_WORDS.get(n, str(n))


@dataclass(frozen=True)
class PriceClash:
    """Active bundles sharing one price: a till payment of that amount cannot name its bundle."""

    price: Decimal
    names: tuple[str, ...]

    @property
    def message(self) -> str:
        return PRICE_CLASH_IN_CATALOGUE.format(
            count=_count(len(self.names)),
            price=ksh(self.price),
            names=", ".join(self.names),
        )


def price_clash_for(*, price: Decimal | None, active: bool, bundle_pk: int | None = None) -> str:
    """What saving a bundle at `price` does to till matching: a warning, or "" when it is harmless.

    A retired bundle never clashes (the matcher only reads active bundles).
    """
    if not active or price is None:
        return ""
    same_price = Bundle.objects.active().filter(price=price).exclude(pk=bundle_pk)
    others = list(same_price.order_by("name").values_list("name", flat=True))
    if not others:
        return ""
    return PRICE_CLASH.format(price=ksh(price), others=", ".join(others), count=_count(len(others) + 1))


def _clashes(bundles: Iterable[Bundle], involves) -> list[PriceClash]:
    """Prices shared by two or more of `bundles`, by price then name, keeping only the groups
    with a bundle `involves` accepts."""
    by_price: dict[Decimal, list[Bundle]] = defaultdict(list)
    for bundle in sorted(bundles, key=lambda b: (b.price, b.name)):
        by_price[bundle.price].append(bundle)
    return [
        PriceClash(price=price, names=tuple(b.name for b in group))
        for price, group in by_price.items()
        if len(group) > 1 and any(involves(b) for b in group)
    ]


def price_clashes(*, slugs: Iterable[str] | None = None) -> list[PriceClash]:
    """Every price shared by two or more active bundles (only those involving `slugs`, if given)."""
    wanted = set(slugs) if slugs is not None else None
    on_sale = Bundle.objects.active().only("slug", "name", "price")
    return _clashes(on_sale, lambda b: wanted is None or b.slug in wanted)


def price_clashes_on_activation(*, bundles: Iterable[Bundle]) -> list[PriceClash]:
    """The clashes putting `bundles` (back) on sale would create: what the bulk action warns of."""
    waking = {b.pk: b for b in bundles if not b.active}
    if not waking:
        return []
    on_sale = Bundle.objects.active().exclude(pk__in=waking).only("name", "price")
    return _clashes([*on_sale, *waking.values()], lambda b: b.pk in waking)
