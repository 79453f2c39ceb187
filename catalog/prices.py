"""The price of a bundle at a moment: the bundle's price history (BundlePriceChange) read once.

The matcher and the verify decisions both ask "which bundles cost this amount when it was paid"
and "what did this bundle cost then"; the catalogue owns the answer.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from catalog.models import Bundle, BundlePriceChange


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
