"""Domain errors of reconciliation, with the messages tests and the admin name."""

from console.exceptions import DomainError

CLAIM_ALREADY_DECIDED = "This claim was already {status} by {who} at {when}."
CLAIM_NOT_OPEN = "Only a claim waiting for a decision can be {action}; this one is {status}."
RECEIPT_ALREADY_USED = "Receipt {code} already paid order {order}; a receipt pays one order only."
RECEIPT_NOT_FOUND = "No till receipt {code} is recorded."
AMOUNT_RETYPE_MISMATCH = "The amount you typed ({typed}) is not the receipt amount; check the receipt again."
BUNDLE_REQUIRED = "Pick the bundle this payment is for: {reason}."
RECIPIENT_REQUIRED = "Enter the number to load the bundle on."
REASON_REQUIRED = "Give a reason."
NOT_VERIFIED = "Only a verified claim can be undone; this one is {status}."
ORDER_DELIVERED = "Order {order} was already delivered; refund it instead of undoing the verification."
DAY_ALREADY_CLOSED = "{day} was already closed by {who}."
BAD_C2B = "Not a C2B payment: {detail}"


class ReconciliationError(DomainError):
    """Reconciliation refused this."""


class ClaimAlreadyDecided(ReconciliationError):
    """Someone else decided this claim first."""


class ClaimNotOpen(ReconciliationError):
    """The claim is not waiting for a decision."""


class ReceiptAlreadyUsed(ReconciliationError):
    """The receipt already paid an order."""


class ReceiptNotFound(ReconciliationError):
    """No such till receipt."""


class VerificationInvalid(ReconciliationError):
    """The verification form does not add up."""


class DayAlreadyClosed(ReconciliationError):
    """The day already has a sign-off."""


class InvalidC2BPayload(ReconciliationError):
    """The C2B body is not a payment we can record."""


class ImportRefused(ReconciliationError):
    """The file cannot be imported; nothing was saved."""


CLAIM_HELD_BY_OTHER = "Held by {who} until {until}; take it over first."
QUEUE_EMPTY = "No claims waiting. Paste a WhatsApp message or upload a chat export."
NOT_HOLDER = "You do not hold claim {code}."


class ClaimHeldByOther(ReconciliationError):
    """Another agent is working on this claim."""


class QueueEmpty(ReconciliationError):
    """Nothing is waiting that nobody else holds."""
