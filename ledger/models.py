"""Orders, STK requests, callbacks and the double-entry books."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Bundle

# ---------------------------------------------------------------------------------------------
# Orders and payments
# ---------------------------------------------------------------------------------------------
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O/1/I: read aloud over the phone


def new_order_reference() -> str:
    return "TXN-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


class Channel(models.TextChoices):
    STK = "stk", "STK push"
    TILL = "till", "Till (manual)"


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    PAID = "paid", "Paid"
    DELIVERED = "delivered", "Delivered"
    NEEDS_REVIEW = "needs_review", "Needs review"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


_S = OrderStatus
# Every status an order may move to from each status: the one table of an order's life. Only the
# status setter in ledger.services changes an order's status, and it refuses anything not here.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # Paid by a prompt or a till receipt; an amount or figures that disagree -> review.
    _S.PENDING_PAYMENT: frozenset({_S.PAID, _S.NEEDS_REVIEW, _S.FAILED, _S.EXPIRED, _S.CANCELLED}),
    # Sent again, or a late payment of the old prompt is still taken.
    _S.FAILED: frozenset({_S.PENDING_PAYMENT, _S.PAID, _S.NEEDS_REVIEW}),
    _S.EXPIRED: frozenset({_S.PENDING_PAYMENT, _S.PAID, _S.NEEDS_REVIEW}),
    # Money that arrives after a cancel is held for a person to decide.
    _S.CANCELLED: frozenset({_S.NEEDS_REVIEW}),
    # Delivered, refunded, its payment reversed (review), or its till claim's verification undone.
    _S.PAID: frozenset({_S.DELIVERED, _S.REFUNDED, _S.NEEDS_REVIEW, _S.CANCELLED}),
    _S.DELIVERED: frozenset({_S.REFUNDED}),
    _S.NEEDS_REVIEW: frozenset(),
    _S.REFUNDED: frozenset(),
}


class Order(models.Model):
    reference = models.CharField(max_length=12, unique=True, default=new_order_reference, editable=False)
    bundle = models.ForeignKey(Bundle, on_delete=models.PROTECT, related_name="orders")
    # Snapshot at order time: later price changes never alter this order.
    price = models.DecimalField("price (KES)", max_digits=10, decimal_places=2)
    payer_msisdn = models.CharField("payer", max_length=12, blank=True, db_index=True)
    recipient_msisdn = models.CharField("recipient", max_length=12, db_index=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, db_index=True)
    gateway = models.CharField(max_length=16, blank=True)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT, db_index=True
    )
    status_reason = models.CharField(max_length=255, blank=True, help_text="Why it failed or needs review")
    mpesa_receipt = models.CharField("M-Pesa receipt", max_length=20, null=True, blank=True, unique=True)
    amount_paid = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True, db_index=True)
    delivered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True, db_index=True)  # the matcher's "what changed"

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("send_stk", "Can send STK pushes"),
            ("mark_delivered", "Can mark orders delivered"),
            ("cancel_order", "Can cancel unpaid orders"),
            ("refund_order", "Can refund orders"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # The dashboard's fortnight of sales (ledger.books.selectors.sales_days) read from the
            # index alone: the orders a sale or "paid, delivery pending" can be, by paid_at.
            models.Index(
                fields=["paid_at"],
                include=["status", "channel", "amount_paid", "price", "id"],
                condition=Q(status__in=[OrderStatus.DELIVERED, OrderStatus.PAID]),
                name="order_sales_by_paid_at",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="order_price_positive"),
        ]

    def __str__(self):
        return self.reference

    def can_become(self, status: str) -> bool:
        """Whether ORDER_TRANSITIONS lets this order move from its status to ``status``."""
        return status in ORDER_TRANSITIONS.get(self.status, frozenset())


class StkStatus(models.TextChoices):
    QUEUED = "queued", "Sent, waiting for the customer"
    # The gateway did not answer the send (timeout, lost connection): the prompt may still reach
    # the phone, so this is neither failed nor resendable until STK_PROMPT_LIFETIME has passed.
    UNKNOWN = "unknown", "Sent, answer unknown"
    SUCCESS = "success", "Paid"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired (no answer)"
    ERROR = "error", "Gateway error"


class StkRequest(models.Model):
    """One PIN prompt sent for an order. A retry is a new StkRequest on the same order."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="stk_requests")
    gateway = models.CharField(max_length=16)
    phone = models.CharField(max_length=12)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    checkout_request_id = models.CharField(
        "checkout request ID", max_length=64, null=True, blank=True, unique=True
    )
    merchant_request_id = models.CharField("merchant request ID", max_length=64, blank=True)
    gateway_reference = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(
        max_length=10, choices=StkStatus.choices, default=StkStatus.QUEUED, db_index=True
    )
    result_code = models.CharField(max_length=16, blank=True)
    result_desc = models.CharField("result description", max_length=255, blank=True)
    receipt = models.CharField(max_length=20, blank=True)
    raw_request = models.JSONField("request sent", default=dict, blank=True)
    raw_response = models.JSONField("gateway answer", default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    query_count = models.PositiveIntegerField("status queries", default=0)
    last_query_at = models.DateTimeField(null=True, blank=True)
    next_query_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_query_result = models.JSONField("last status answer", default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "STK request"

    def __str__(self):
        return self.checkout_request_id or f"STK #{self.pk}"


class CallbackSource(models.TextChoices):
    PAYHERO = "payhero", "PayHero STK"
    DARAJA = "daraja", "Daraja STK"
    C2B_CONFIRMATION = "c2b_confirmation", "C2B confirmation"
    C2B_VALIDATION = "c2b_validation", "C2B validation"


class CallbackOutcome(models.TextChoices):
    RECEIVED = "received", "Received"
    APPLIED = "applied", "Applied"
    DUPLICATE = "duplicate", "Duplicate"
    UNKNOWN_ORDER = "unknown_order", "Unknown order"
    # A success waits for the gateway's status query to confirm it (retried by the worker).
    CONFIRMING = "confirming", "Waiting for confirmation"
    # The status query did not confirm the success: nothing was paid.
    UNCONFIRMED = "unconfirmed", "Not confirmed by the gateway"
    REJECTED = "rejected", "Rejected"
    ERROR = "error", "Error"


class CallbackLog(models.Model):
    """Every inbound callback, stored verbatim before anything parses it."""

    source = models.CharField(max_length=20, choices=CallbackSource.choices)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_ip = models.GenericIPAddressField("sender IP", null=True, blank=True)
    path = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    outcome = models.CharField(
        max_length=16, choices=CallbackOutcome.choices, default=CallbackOutcome.RECEIVED
    )
    detail = models.TextField(blank=True)
    checkout_request_id = models.CharField("checkout request ID", max_length=64, blank=True)
    receipt = models.CharField(max_length=20, blank=True)
    stk_request = models.ForeignKey(
        StkRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks"
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # False when the token, source IP or signature check failed: such a body is never applied.
    authenticated = models.BooleanField(default=True)
    # Size of the body as received; only an excerpt is kept of oversized or unauthenticated ones.
    body_size = models.PositiveIntegerField("body size (bytes)", default=0)
    body_truncated = models.BooleanField(default=False)
    # The callback's own figures, and what the gateway's status query answered (both sides shown).
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    confirmation = models.JSONField(default=dict, blank=True)
    # When the worker looks again at a callback that is received or waiting for confirmation.
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "callback"
        verbose_name_plural = "callback inbox"
        permissions = [("reprocess_callback", "Can re-process callbacks")]
        # Plain b-tree indexes: db_index on a CharField also builds a LIKE-pattern index on
        # PostgreSQL, which no query here uses (search is icontains) and every callback paid for.
        indexes = [
            models.Index(fields=["source"], name="callbacklog_source"),
            models.Index(fields=["outcome"], name="callbacklog_outcome"),
            models.Index(fields=["checkout_request_id"], name="callbacklog_checkout"),
            models.Index(fields=["receipt"], name="callbacklog_receipt"),
        ]

    def __str__(self):
        return f"{self.get_source_display()} #{self.pk}"


# ---------------------------------------------------------------------------------------------
# The books: double-entry in KES. Rows are written only by ledger.books and never changed.
# ---------------------------------------------------------------------------------------------
class AccountKind(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    INCOME = "income", "Income"
    CONTRA_INCOME = "contra_income", "Contra income"
    EXPENSE = "expense", "Expense"


class Account(models.Model):
    code = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    # The stable key services use (`mpesa_till`, `stk_clearing_payhero`, `bundles_owed`…).
    key = models.SlugField("system name", max_length=40, unique=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"

    @property
    def debit_normal(self) -> bool:
        return self.kind in (AccountKind.ASSET, AccountKind.EXPENSE, AccountKind.CONTRA_INCOME)


class EntryKind(models.TextChoices):
    STK_PAYMENT = "stk_payment", "STK payment confirmed"
    TILL_RECEIPT = "till_receipt", "Till receipt recorded"
    CLAIM_VERIFIED = "claim_verified", "Claim verified"
    DELIVERY = "delivery", "Order delivered"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"
    REVERSAL = "reversal", "Reversal"


class ImmutableQuerySet(models.QuerySet):
    """Posted books are never changed: corrections are reversing entries."""

    def update(self, **kwargs):
        raise PermissionError("Journal entries and postings cannot be changed; post a reversal.")

    def delete(self):
        raise PermissionError("Journal entries and postings cannot be deleted; post a reversal.")

    # Bulk paths that would bypass the books service are closed too.
    def bulk_update(self, *args, **kwargs):
        raise PermissionError("Journal entries and postings cannot be changed; post a reversal.")


class ImmutableModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"{self._meta.verbose_name} cannot be changed; post a reversal.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{self._meta.verbose_name} cannot be deleted; post a reversal.")


class JournalEntry(ImmutableModel):
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    number = models.CharField(max_length=16, unique=True, editable=False)  # JE-000001, gapless
    kind = models.CharField(max_length=20, choices=EntryKind.choices, db_index=True)
    # When it was booked: never inside a closed day (an entry for a closed day books on the next
    # open one). Trial balance, exports and the daily close read this.
    posted_at = models.DateTimeField(db_index=True)
    # When the money moved (the receipt's or payment's time). Empty on entries booked before value
    # dates existed: their value date is their posting date (see `value_time`).
    value_at = models.DateTimeField("value date", null=True, blank=True, db_index=True)
    memo = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True, help_text="Required for refunds, adjustments and reversals")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="journal_entries"
    )
    receipt_code = models.CharField("M-Pesa receipt", max_length=20, blank=True, db_index=True)
    channel = models.CharField(max_length=8, blank=True)
    # One money event posts once: a replayed callback finds its entry by this key.
    idempotency_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        permissions = [
            ("post_adjustment", "Can post adjustments"),
            ("reverse_entry", "Can reverse entries"),
            ("export_ledger", "Can export the ledger"),
        ]
        verbose_name_plural = "journal entries"

    def __str__(self):
        return self.number

    @property
    def value_time(self):
        return self.value_at or self.posted_at

    @property
    def after_close(self) -> bool:
        """Booked on a later day than its money moved, because that day was closed."""
        return self.value_at is not None and self.posted_at > self.value_at


class BooksClosedDay(models.Model):
    """A Nairobi day whose books are closed: nothing is posted inside it until it is reopened."""

    day = models.DateField(unique=True)
    closed_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-day"]
        verbose_name = "closed day"

    def __str__(self):
        return f"Books closed {self.day}"


class Posting(ImmutableModel):
    """One line of an entry. `amount` > 0 is a debit, < 0 a credit."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    # Indexed by posting_account_amount (account first), which also serves the foreign key.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings", db_index=False)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["entry_id", "id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_nonzero")]
        # An account's balance (the dashboard's Unallocated receipts) read from the index alone.
        indexes = [models.Index(fields=["account"], include=["amount"], name="posting_account_amount")]

    def __str__(self):
        return f"{self.entry_id} {self.account_id} {self.amount}"

    @property
    def debit(self):
        return self.amount if self.amount > 0 else None

    @property
    def credit(self):
        return -self.amount if self.amount < 0 else None


class EntryCounter(models.Model):
    """Row locked while numbering entries, so JE numbers have no gaps and no repeats."""

    name = models.CharField(max_length=20, unique=True)
    last = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.name}: {self.last}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    """A ledger export run in the background; records who exported what."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=20, default="postings")
    format = models.CharField(max_length=4, choices=[("csv", "CSV"), ("xlsx", "XLSX")], default="csv")
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    rows_total = models.PositiveBigIntegerField(null=True, blank=True)
    rows_done = models.PositiveBigIntegerField(default=0)
    file = models.FileField(upload_to="exports/", blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Export #{self.pk} ({self.get_status_display()})"

    @property
    def progress_percent(self) -> int:
        if not self.rows_total:
            return 100 if self.status == ExportStatus.DONE else 0
        return min(100, int(self.rows_done * 100 / self.rows_total))
