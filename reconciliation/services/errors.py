"""Domain errors of reconciliation, with the messages tests and the admin name."""

from console.kernel.exceptions import DomainError

CLAIM_ALREADY_DECIDED = "This claim was already {status} by {who} at {when}."
CLAIM_NOT_OPEN = "Only a claim waiting for a decision can be {action}; this one is {status}."
RECEIPT_ALREADY_USED = "Receipt {code} already paid order {order}; a receipt pays one order only."
ALREADY_CLAIMED_BY_SENDER = "This sender already claimed {code} (claim #{pk}): verify that claim instead."
RECEIPT_NOT_FOUND = "No till receipt {code} is recorded."
AMOUNT_RETYPE_MISMATCH = "The amount you typed ({typed}) is not the receipt amount; check the receipt again."
BUNDLE_REQUIRED = "Pick the bundle this payment is for: {reason}."
RECIPIENT_REQUIRED = "Enter the number to load the bundle on."
REASON_REQUIRED = "Give a reason."
TRANSITION_REFUSED = "A claim that is {status} cannot become {to}."
CODE_USED_NO_VERIFY = (
    "Code {code} already paid another claim; the first claim stands, so this one cannot be verified. "
    "Reject it, or wait for the customer's corrected code."
)
NOT_VERIFIED = "Only a verified claim can be undone; this one is {status}."
ORDER_DELIVERED = "Order {order} was already delivered; refund it instead of undoing the verification."
DAY_ALREADY_CLOSED = "{day} was already closed by {who}."
DAY_NOT_CLOSED = "{day} is not closed."
REOPEN_REASON_REQUIRED = "Say why the day is reopened."
BAD_C2B = "Not a C2B payment: {detail}"
C2B_NOT_UTF8 = "the body is not UTF-8 text"
C2B_NOT_JSON = "the body is not JSON"
C2B_TOO_DEEP = "the JSON is nested too deeply"
C2B_NOT_OBJECT = "the body is not a JSON object"
C2B_HAS_NUL = "a value contains a NUL character"
C2B_NOT_UNICODE = "a value is not valid Unicode"
C2B_NOT_FINITE = "a number is not finite"
C2B_NUMBER_TOO_LARGE = "a number is too large"
C2B_NOT_TEXT = "{field} is not text ({value})"
C2B_NOT_AUTHENTICATED = "the request failed its token or source-IP check; it is never applied"
C2B_AMOUNT_NOT_ASCII = "TransAmount {value} is not written in ASCII digits"
C2B_BAD_TIME = "TransTime {value} is not a Nairobi time written YYYYMMDDHHMMSS"


class ReconciliationError(DomainError):
    """Reconciliation refused this."""


class ClaimAlreadyDecided(ReconciliationError):
    """Someone else decided this claim first."""


class ClaimNotOpen(ReconciliationError):
    """The claim is not waiting for a decision."""


class ClaimTransitionRefused(ClaimNotOpen):
    """A status change that CLAIM_TRANSITIONS does not allow (a bug, or a race the caller lost)."""


class ReceiptAlreadyUsed(ReconciliationError):
    """The receipt already paid an order."""


class ReceiptNotFound(ReconciliationError):
    """No such till receipt."""


class VerificationInvalid(ReconciliationError):
    """The verification form does not add up."""


class DayAlreadyClosed(ReconciliationError):
    """The day already has a sign-off."""


class DayNotClosed(ReconciliationError):
    """The day has no sign-off to reopen."""


class InvalidC2BPayload(ReconciliationError):
    """The C2B body is not a payment we can record. ``field`` names the C2B field at fault, if one."""

    def __init__(self, message: str = "", field: str | None = None):
        super().__init__(message)
        self.field = field


class ImportRefused(ReconciliationError):
    """The file cannot be imported; nothing was saved."""


CLAIM_HELD_BY_OTHER = "Held by {who} until {until}; take it over first."
QUEUE_EMPTY = "No claims waiting. Paste a WhatsApp message or upload a chat export."
NOT_HOLDER = "You do not hold claim {code}."


class ClaimHeldByOther(ReconciliationError):
    """Another agent is working on this claim."""


class QueueEmpty(ReconciliationError):
    """Nothing is waiting that nobody else holds."""
