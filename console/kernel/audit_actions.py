"""Every action the audit trail records: one closed list, so the trail can be filtered reliably.

Where an action happened (a callback, the gateway's status query, the demo) is the event's own
`source` field, never part of the action name.
"""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    # Orders (ledger)
    ORDER_CREATE = "order.create", "Order created"
    ORDER_RETRY = "order.retry", "Prompt sent again"
    ORDER_CANCEL = "order.cancel", "Order cancelled"
    ORDER_DELIVER = "order.deliver", "Bundle delivered"
    ORDER_REFUND = "order.refund", "Order refunded"
    ORDER_PAYMENT_REVERSED = "order.payment_reversed", "Order payment reversed"
    # STK prompts (ledger)
    STK_SEND = "stk.send", "Prompt sent"
    STK_SEND_FAILED = "stk.send_failed", "Prompt not sent"
    STK_SEND_UNKNOWN = "stk.send_unknown", "Prompt send unanswered"
    STK_PAID = "stk.paid", "Prompt paid"
    STK_PAID_AFTER_CANCEL = "stk.paid_after_cancel", "Prompt paid after cancel"
    STK_EXTRA_PAYMENT = "stk.extra_payment", "Second payment for a paid order"
    STK_FAILED = "stk.failed", "Prompt failed"
    STK_EXPIRE = "stk.expire", "Prompt expired"
    STK_ADOPT_UNKNOWN = "stk.adopt_unknown", "Unknown prompt matched"
    STK_PAID_BY_TILL_RECEIPT = "stk.paid_by_till_receipt", "Prompt paid by a till receipt"
    # Callbacks (ledger)
    CALLBACK_REPROCESS = "callback.reprocess", "Callback processed again"
    CALLBACK_REPROCESS_REFUSED = "callback.reprocess_refused", "Callback re-process refused"
    # Books (ledger)
    JOURNAL_ADJUSTMENT = "journal.adjustment", "Adjustment posted"
    JOURNAL_REVERSE = "journal.reverse", "Entry reversed"
    BOOKS_DAY_CLOSED = "books.day_closed", "Books closed for a day"
    BOOKS_DAY_REOPENED = "books.day_reopened", "Books reopened for a day"
    LEDGER_EXPORT_QUEUED = "ledger.export_queued", "Ledger export queued"
    LEDGER_EXPORT_DOWNLOADED = "ledger.export_downloaded", "Ledger export downloaded"
    # Catalogue
    BUNDLE_CREATED = "bundle.created", "Bundle created"
    BUNDLE_CHANGED = "bundle.changed", "Bundle changed"
    BUNDLE_DELETED = "bundle.deleted", "Bundle deleted"
    # Claims (reconciliation)
    CLAIM_TAKEN = "claim.taken", "Claim taken"
    CLAIM_TAKEN_OVER = "claim.taken_over", "Claim taken over"
    CLAIM_RELEASED = "claim.released", "Claim released"
    CLAIM_VERIFIED = "claim.verified", "Claim verified"
    CLAIM_REJECTED = "claim.rejected", "Claim rejected"
    CLAIM_VERIFICATION_UNDONE = "claim.verification_undone", "Verification undone"
    CLAIM_SUPERSEDED = "claim.superseded", "Claim corrected"
    CLAIM_REOPENED = "claim.reopened", "Claim reopened"
    CLAIM_PAYMENT_REVERSED = "claim.payment_reversed", "Claim payment reversed"
    # Receipts and imports (reconciliation)
    RECEIPT_SMS_RECORDED = "receipt.sms_recorded", "Till SMS recorded"
    RECEIPT_STK_SETTLED = "receipt.stk_settled", "STK payment settled in the till"
    RECEIPT_STK_SETTLEMENT_REVIEW = "receipt.stk_settlement_review", "STK settlement needs review"
    RECEIPT_PAYS_UNKNOWN_PROMPT = "receipt.pays_unknown_prompt", "Receipt pays an unanswered prompt"
    RECEIPT_PAYMENT_REVERSED = "receipt.payment_reversed", "Receipt payment reversed"
    STATEMENT_PREVIEWED = "statement.previewed", "Statement previewed"
    STATEMENT_IMPORT_STARTED = "statement.import_started", "Statement import started"
    STATEMENT_IMPORT_RESUMED = "statement.import_resumed", "Statement import resumed"
    WHATSAPP_IMPORTED = "whatsapp.imported", "Chat imported"
    WHATSAPP_QUEUED = "whatsapp.queued", "Chat import queued"
    WHATSAPP_REFUSED = "whatsapp.refused", "Chat import refused"
    WHATSAPP_MESSAGE_PASTED = "whatsapp.message_pasted", "Message pasted"
    RECONCILIATION_RUN_ABANDONED = "reconciliation_run.abandoned", "Matcher run abandoned"
    DAY_CLOSED = "day.closed", "Day closed"
    DAY_REOPENED = "day.reopened", "Day reopened"
    # Staff access (console)
    LOGIN_LOCKED_OUT = "login.locked_out", "Login locked out"
    LOGIN_UNLOCKED = "login.unlocked", "Login unlocked"
    OTP_ENROLLED = "otp.enrolled", "Two-step login enrolled"
    OTP_RECOVERY_CODES_RENEWED = "otp.recovery_codes_renewed", "Recovery codes renewed"


class AuditSource(models.TextChoices):
    """Where an automatic decision came from (blank for a person's action in the console)."""

    CALLBACK = "callback", "Gateway callback"
    QUERY = "query", "Gateway status query"
    DEMO = "demo", "Demo data"
