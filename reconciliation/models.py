"""Till receipts (what M-Pesa says), claims (what customers say) and the runs that match them."""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalog.models import Bundle
from console.kernel.phones import phone_display
from ledger.models import Order


class ReceiptSource(models.TextChoices):
    C2B = "c2b", "C2B confirmation"
    STATEMENT = "statement", "Statement import"
    SMS = "sms", "Pasted till SMS"


class ImportStatus(models.TextChoices):
    PREVIEW = "preview", "Preview (not saved)"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    DONE = "done", "Imported"
    FAILED = "failed", "Failed"


# A background job (statement import, matcher run) whose heartbeat is older than this has died:
# far above one chunk's or batch's time, so a slow but live job is never taken for dead.
HEARTBEAT_STALE_SECONDS = 120


def _stale_before(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(seconds=HEARTBEAT_STALE_SECONDS)


def _no_heartbeat_since(cut: dt.datetime) -> Q:
    return Q(heartbeat_at__lt=cut) | Q(heartbeat_at__isnull=True)


class StatementImportQuerySet(models.QuerySet):
    def died(self, now: dt.datetime | None = None):
        """Queued or importing, but no worker has shown a sign of life for HEARTBEAT_STALE_SECONDS."""
        return self.filter(
            _no_heartbeat_since(_stale_before(now)), status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]
        )

    def takeable(self, now: dt.datetime | None = None):
        """What a worker may take a lease on: queued, or importing but its worker died."""
        stale = _no_heartbeat_since(_stale_before(now))
        return self.filter(Q(status=ImportStatus.QUEUED) | (Q(status=ImportStatus.RUNNING) & stale))


class StatementImport(models.Model):
    """One uploaded M-Pesa business statement and what importing it did."""

    file = models.FileField(upload_to="statements/")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField("file fingerprint (SHA-256)", max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.PREVIEW)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)  # new / known / skipped-by-reason / errors
    errors = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker importing it: its lease (one worker at a time) and its last sign of life.
    lease_token = models.CharField("worker lease", max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # how many times a worker took it

    objects = StatementImportQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self):
        return self.original_name

    def is_dead(self, now: dt.datetime | None = None) -> bool:
        if self.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return False
        return self.heartbeat_at is None or self.heartbeat_at < _stale_before(now)

    def is_resumable(self, now: dt.datetime | None = None) -> bool:
        return self.status == ImportStatus.FAILED or self.is_dead(now)


class SettlementState(models.TextChoices):
    """Whether a till receipt is the till's record of an STK payment (Buy Goods STK lands in the till)."""

    NONE = "", "Till payment"
    SETTLED = "settled", "Settles an STK payment"
    REVIEW = "review", "Settles an STK payment; amounts differ (review)"


class TillReceiptQuerySet(models.QuerySet):
    def unmatched(self):
        return self.filter(order__isnull=True)

    def partly_used(self):
        """Till receipts that paid a cheaper bundle: the rest (amount − price) is still unallocated.
        A settlement is an STK payment's money, never unallocated once linked to its order."""
        return self.filter(order__isnull=False, settlement="", amount__gt=models.F("order__price"))

    def settlements_to_review(self):
        """STK settlements whose till amount differs from the STK payment: a person must look."""
        return self.filter(settlement=SettlementState.REVIEW)


class TillReceipt(models.Model):
    """Money paid into our till, as M-Pesa saw it. One receipt code, one row, one order at most."""

    code = models.CharField("receipt", max_length=12, unique=True)
    amount = models.DecimalField("amount (KES)", max_digits=12, decimal_places=2)
    paid_at = models.DateTimeField(db_index=True)
    payer_masked = models.CharField("payer", max_length=80, blank=True)
    payer_name = models.CharField(max_length=120, blank=True)
    source = models.CharField(max_length=10, choices=ReceiptSource.choices)
    statement_import = models.ForeignKey(
        StatementImport, null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    raw = models.JSONField("as received", default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set when a verified claim turned this money into an order; a receipt pays one order only.
    order = models.OneToOneField(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="till_receipt"
    )
    # Set when the code is an STK receipt: this money is that payment reaching the till, not new money.
    settlement = models.CharField(max_length=10, choices=SettlementState.choices, blank=True, default="")
    settlement_note = models.CharField(max_length=255, blank=True)

    objects = TillReceiptQuerySet.as_manager()

    class Meta:
        ordering = ["-paid_at", "-id"]
        permissions = [
            ("import_statement", "Can import statements and till SMS"),
            ("run_reconciliation", "Can run reconciliation"),
        ]
        indexes = [
            models.Index(fields=["paid_at"], condition=Q(order__isnull=True), name="receipt_unmatched_idx")
        ]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="receipt_amount_positive")]

    def __str__(self):
        return self.code


class WhatsAppImport(models.Model):
    file = models.FileField(upload_to="whatsapp/")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField("file fingerprint (SHA-256)", max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    # What the uploader said about our own account, kept for the worker that imports the file.
    business_number = models.CharField(max_length=12, blank=True)
    business_name = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        verbose_name = "WhatsApp import"

    def __str__(self):
        return self.original_name


class MessageKind(models.TextChoices):
    CLAIM = "claim", "Payment report (claim made)"
    UNPARSEABLE = "unparseable", "Payment report, unreadable (claim to review)"
    CONTEXT = "context", "Part of a report in the sender's next message"
    CHATTER = "chatter", "Chatter"
    SYSTEM = "system", "System line"
    MEDIA = "media", "Media"
    BUSINESS = "business", "Our own reply"


class WhatsAppMessage(models.Model):
    """Every message we were given, kept as written."""

    chat_import = models.ForeignKey(
        WhatsAppImport, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    sender_label = models.CharField("sender name", max_length=120, blank=True)
    sender_msisdn = models.CharField("sender phone", max_length=12, blank=True, db_index=True)
    sent_at = models.DateTimeField(db_index=True)
    text = models.TextField()
    is_system = models.BooleanField("WhatsApp notice", default=False)
    is_from_business = models.BooleanField("sent by us", default=False)
    # How the message was read (claim, chatter, unparseable, system, media, business): the
    # messages list filters on it, so a report that made no claim can always be found.
    kind = models.CharField(max_length=12, choices=MessageKind.choices, blank=True, db_index=True)
    # Hash of (sender, time, text, occurrence): re-uploading an export adds nothing twice.
    fingerprint = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = "WhatsApp message"

    def __str__(self):
        label = self.sender_label if not (self.sender_label or "").lstrip("+").isdigit() else ""
        return f"{label or phone_display(self.sender_msisdn)} {self.sent_at:%Y-%m-%d %H:%M}"


class ClaimStatus(models.TextChoices):
    PENDING = "pending", "Pending (waiting for the receipt)"
    VERIFIED = "verified", "Verified"
    NEEDS_REVIEW = "needs_review", "Needs review"
    REJECTED = "rejected", "Rejected"
    # A later claim of the same sender corrected this one and verified: kept, out of the queue.
    SUPERSEDED = "superseded", "Superseded by a correction"


# Every move a claim's status may make, by name: {from: {transition: to}}. The one place the rule
# lives: services.claim_status.claim_status_set refuses any other move, and the claim admin shows
# only the buttons whose transition applies to the claim in front of it.
CLAIM_TRANSITIONS: dict[str, dict[str, str]] = {
    ClaimStatus.PENDING: {
        "wait": ClaimStatus.PENDING,  # the matcher: no receipt yet, within the grace period
        "review": ClaimStatus.NEEDS_REVIEW,  # the matcher: a person must look
        "verify": ClaimStatus.VERIFIED,
        "reject": ClaimStatus.REJECTED,
        "supersede": ClaimStatus.SUPERSEDED,  # the sender's correction verified
    },
    ClaimStatus.NEEDS_REVIEW: {
        "wait": ClaimStatus.PENDING,  # e.g. a look-alike receipt was taken: wait again
        "review": ClaimStatus.NEEDS_REVIEW,
        "verify": ClaimStatus.VERIFIED,
        "reject": ClaimStatus.REJECTED,
        "supersede": ClaimStatus.SUPERSEDED,
    },
    ClaimStatus.VERIFIED: {
        "undo_verification": ClaimStatus.NEEDS_REVIEW,  # finance undoes it (the order is cancelled)
        "payment_reversed": ClaimStatus.NEEDS_REVIEW,  # finance reversed the order's payment
    },
    ClaimStatus.REJECTED: {},  # final
    ClaimStatus.SUPERSEDED: {
        "reopen": ClaimStatus.PENDING,  # its own code reached the till after all
    },
}


def claim_statuses_allowing(transition: str) -> tuple[str, ...]:
    """The statuses from which the named transition applies (for querysets: status__in=...)."""
    return tuple(status for status, moves in CLAIM_TRANSITIONS.items() if transition in moves)


class ClaimReason(models.TextChoices):
    AMOUNT_MISMATCH = "amount_mismatch", "Amount does not match a bundle or the pasted SMS"
    CODE_ALREADY_USED = "code_already_used", "Code already used by another claim"
    UNKNOWN_CODE = "unknown_code", "No such payment on the till"
    POSSIBLE_TYPO = "possible_typo", "Code looks like a typo of a real receipt"
    AMBIGUOUS = "ambiguous", "Ambiguous"
    UNPARSEABLE = "unparseable", "Could not read the message"
    PAID_BY_STK = "paid_by_stk", "Already paid by STK"
    PAYMENT_REVERSED = "payment_reversed", "Payment reversed by finance"
    VERIFY_FAILED = "verify_failed", "Automatic verification failed"
    OTHER_MERCHANT = "other_merchant", "Pasted SMS names another payee"


# Reasons that rule a transition out whatever the status allows: a code another claim already
# used never verifies a second claim (the first stands; reject it or wait for a corrected code).
TRANSITIONS_REFUSED_FOR_REASON: dict[str, set[str]] = {"verify": {ClaimReason.CODE_ALREADY_USED}}


class Claim(models.Model):
    """A customer's statement: 'I paid with code X, load number Y'."""

    message = models.ForeignKey(WhatsAppMessage, on_delete=models.PROTECT, related_name="claims")
    sender_msisdn = models.CharField("sender", max_length=12, db_index=True)
    code = models.CharField(max_length=12, db_index=True)
    recipient_msisdn = models.CharField("recipient", max_length=12, blank=True)
    claimed_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    claimed_merchant = models.CharField(max_length=120, blank=True)
    claimed_at = models.DateTimeField(db_index=True)
    status = models.CharField(
        max_length=14, choices=ClaimStatus.choices, default=ClaimStatus.PENDING, db_index=True
    )
    reason = models.CharField(max_length=20, choices=ClaimReason.choices, blank=True, db_index=True)
    explanation = models.JSONField(default=dict, blank=True)  # the signals checked, pass/fail
    receipt = models.ForeignKey(
        TillReceipt, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    suggested_receipt = models.ForeignKey(
        TillReceipt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bundle = models.ForeignKey(Bundle, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    order = models.OneToOneField(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="claim")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    held_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)  # the matcher's "what changed"

    class Meta:
        ordering = ["claimed_at", "id"]
        permissions = [
            ("verify_claim", "Can verify claims"),
            ("reject_claim", "Can reject claims"),
            ("undo_verification", "Can undo a verification"),
        ]
        indexes = [models.Index(fields=["status", "claimed_at"])]
        constraints = [
            # The same sender repeating the same code is the same claim.
            # (An unreadable report has no code: each one is its own claim.)
            models.UniqueConstraint(
                fields=["sender_msisdn", "code"], condition=~Q(code=""), name="claim_unique_sender_code"
            ),
            # A receipt verifies one claim at most: the last line of defence under races.
            models.UniqueConstraint(
                fields=["receipt"], condition=Q(status="verified"), name="claim_one_verified_per_receipt"
            ),
        ]

    def __str__(self):
        sender = phone_display(self.sender_msisdn, empty="an unknown number")
        return f"{self.code or '(unreadable)'} from {sender}"

    def can(self, transition: str) -> bool:
        """Whether the named transition (a key of CLAIM_TRANSITIONS) applies to this claim now,
        unless its reason refuses it (TRANSITIONS_REFUSED_FOR_REASON)."""
        if self.reason in TRANSITIONS_REFUSED_FOR_REASON.get(transition, ()):
            return False
        return transition in CLAIM_TRANSITIONS.get(self.status, {})

    def can_become(self, status: str) -> bool:
        """Whether CLAIM_TRANSITIONS allows this claim to move from its status to ``status``."""
        return status in CLAIM_TRANSITIONS.get(self.status, {}).values()

    @property
    def is_open(self) -> bool:
        """Waiting for a decision (and so may be held by an agent): its status allows verify,
        whatever its reason (a used code is still open: it waits for a reject)."""
        return self.status in claim_statuses_allowing("verify")


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Finished"
    FAILED = "failed", "Failed"
    ABANDONED = "abandoned", "Abandoned (died)"


class ReconciliationRunQuerySet(models.QuerySet):
    def died(self, now: dt.datetime | None = None):
        """Still marked running, but no heartbeat for HEARTBEAT_STALE_SECONDS: its worker is gone."""
        return self.filter(_no_heartbeat_since(_stale_before(now)), status=RunStatus.RUNNING)


class ReconciliationRun(models.Model):
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING, db_index=True
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # bumped after every batch
    trigger = models.CharField(
        max_length=20,
        default="schedule",
        # Choices, so the admin filter lists them without a DISTINCT over a row a minute.
        choices=[
            ("schedule", "Schedule"),
            ("import", "Import"),
            ("receipt", "New receipt"),
            ("manual", "Manual"),
        ],
    )
    # "all": every open claim examined; "changed": only those whose evidence changed since the
    # previous run (scheduled runs between full ones); "codes": the claims of given codes.
    scope = models.CharField(
        max_length=10,
        default="all",
        choices=[
            ("all", "Every open claim"),
            ("changed", "Claims with new evidence"),
            ("codes", "Given codes"),
        ],
    )
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    objects = ReconciliationRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        # The matcher's "since the previous run" looks up the runs of the last hour among a run a minute.
        indexes = [models.Index(fields=["started_at"], name="run_started_idx")]

    def __str__(self):
        return f"Run #{self.pk}"

    def has_died(self, now: dt.datetime | None = None) -> bool:
        if self.status != RunStatus.RUNNING:
            return False
        return self.heartbeat_at is None or self.heartbeat_at < _stale_before(now)

    @property
    def duration_ms(self):
        if self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class DayClose(models.Model):
    """A finance person's sign-off on a day's figures."""

    day = models.DateField(unique=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(auto_now_add=True)
    figures = models.JSONField(default=dict)
    balanced = models.BooleanField(default=False)
    # Finance may reopen a closed day with a reason (audited) and close it again later.
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reopen_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-day"]

    def __str__(self):
        return f"Close {self.day}"
