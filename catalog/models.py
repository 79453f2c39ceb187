from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class BundleCategory(models.TextChoices):
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class BundleQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True)

    def in_category_order(self):
        """Hourly, daily, weekly, monthly; then the manager's display order, then price."""
        rank = models.Case(
            *(models.When(category=c, then=models.Value(i)) for i, c in enumerate(BundleCategory.values)),
            default=models.Value(99),
        )
        return self.alias(category_rank=rank).order_by("category_rank", "display_order", "price", "id")

    def for_storefront(self):
        return self.active().in_category_order()


class Bundle(models.Model):
    """A data bundle we sell. Retired bundles stay for history; orders snapshot the price."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=80, unique=True)
    category = models.CharField(max_length=16, choices=BundleCategory.choices, db_index=True)
    data_mb = models.PositiveIntegerField("data (MB)", validators=[MinValueValidator(1)])
    validity_hours = models.PositiveIntegerField("validity (hours)", validators=[MinValueValidator(1)])
    price = models.DecimalField(
        "price (KES)", max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("1"))]
    )
    active = models.BooleanField(default=True, db_index=True)
    featured = models.BooleanField(default=False)
    display_order = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BundleQuerySet.as_manager()

    class Meta:
        ordering = ["category", "display_order", "price"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=1), name="bundle_price_positive"),
            # M-Pesa takes whole shillings; a price with cents could never be paid exactly.
            models.CheckConstraint(
                condition=Q(price=models.functions.Round("price")), name="bundle_price_whole"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def data_label(self) -> str:
        if self.data_mb >= 1024:
            gb = Decimal(self.data_mb) / Decimal(1024)
            return f"{gb.normalize():f}GB"
        return f"{self.data_mb}MB"

    @property
    def validity_label(self) -> str:
        h = self.validity_hours
        if h % 24 == 0:
            days = h // 24
            return "24 hours" if days == 1 else f"{days} days"
        return f"{h} hour" + ("s" if h != 1 else "")

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.price is not None and self.price != self.price.to_integral_value():
            raise ValidationError({"price": "Use whole shillings: M-Pesa takes no cents."})


class BundlePriceChange(models.Model):
    """Price history: who changed a bundle's price, when, from what to what."""

    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="price_changes")
    old_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    new_price = models.DecimalField(max_digits=10, decimal_places=2)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=20, default="admin")  # admin | import | fixture

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self):
        return f"{self.bundle}: {self.old_price} → {self.new_price}"
