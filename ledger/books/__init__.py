"""The books: the only code that writes journal entries and postings, and what reads them.

- ``posting``: one balanced entry per money event (the posting rules of design.md).
- ``closing``: closed days (an entry for a closed day is booked on the next open day).
- ``corrections``: refunds, adjustments and reversals people decide on.
- ``checks``: the invariants ``manage.py check_books`` reports.
- ``selectors``, ``forms``, ``exports``, ``chart``: reads, finance's forms, ledger exports, the
  chart of accounts (import those modules directly).

``from ledger import books; books.post_stk_payment(...)`` works for every service name below.
"""

from ledger.books.checks import books_check
from ledger.books.closing import DAY_NOT_CLOSED, booking_time, books_day_close, books_day_reopen, closed_days
from ledger.books.corrections import (
    ADJUSTMENT_TOO_SHORT,
    ORDER_ALREADY_REFUNDED,
    ORDER_NOT_REFUNDABLE,
    PAYMENT_OF_DELIVERED_ORDER,
    PAYMENT_OF_REFUNDED_ORDER,
    REFUND_SOURCE_UNKNOWN,
    REVERSAL_OF_REVERSAL,
    adjustment_post,
    payment_reversal_refusal,
    pays_order,
    post_refund,
    post_reversal,
)
from ledger.books.errors import (
    REASON_REQUIRED,
    DayNotClosed,
    EntryNotReversible,
    InvalidEntry,
    OrderAlreadyRefunded,
    OrderNotRefundable,
    ReasonRequired,
    UnbalancedEntry,
)
from ledger.books.posting import (
    BULK_ENTRY_INVALID,
    BUNDLE_SALES,
    BUNDLES_OWED,
    MPESA_TILL,
    PAYMENT_KINDS,
    RECEIPT_AMOUNT_INVALID,
    SALES_REFUNDS,
    UNALLOCATED,
    entry_post,
    post_claim_verified,
    post_claims_verified,
    post_delivery,
    post_stk_extra_payment,
    post_stk_payment,
    post_stk_settlement_of_unallocated,
    post_stk_settlements_bulk,
    post_stk_unallocated,
    post_till_receipt,
    post_till_receipts_bulk,
    post_till_receipts_set_based,
    stk_clearing,
)

__all__ = [
    "ADJUSTMENT_TOO_SHORT",
    "BULK_ENTRY_INVALID",
    "BUNDLES_OWED",
    "BUNDLE_SALES",
    "DAY_NOT_CLOSED",
    "MPESA_TILL",
    "ORDER_ALREADY_REFUNDED",
    "ORDER_NOT_REFUNDABLE",
    "PAYMENT_KINDS",
    "PAYMENT_OF_DELIVERED_ORDER",
    "PAYMENT_OF_REFUNDED_ORDER",
    "REASON_REQUIRED",
    "RECEIPT_AMOUNT_INVALID",
    "REFUND_SOURCE_UNKNOWN",
    "REVERSAL_OF_REVERSAL",
    "SALES_REFUNDS",
    "UNALLOCATED",
    "DayNotClosed",
    "EntryNotReversible",
    "InvalidEntry",
    "OrderAlreadyRefunded",
    "OrderNotRefundable",
    "ReasonRequired",
    "UnbalancedEntry",
    "adjustment_post",
    "booking_time",
    "books_check",
    "books_day_close",
    "books_day_reopen",
    "closed_days",
    "entry_post",
    "post_reversal",
    "post_refund",
    "payment_reversal_refusal",
    "pays_order",
    "post_claim_verified",
    "post_claims_verified",
    "post_delivery",
    "post_stk_extra_payment",
    "post_stk_payment",
    "post_stk_settlement_of_unallocated",
    "post_stk_settlements_bulk",
    "post_stk_unallocated",
    "post_till_receipt",
    "post_till_receipts_bulk",
    "post_till_receipts_set_based",
    "stk_clearing",
]
