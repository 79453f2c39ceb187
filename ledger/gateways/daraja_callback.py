"""Daraja's STK callback: ``Body.stkCallback`` read into an StkResult, or CallbackParseError.

Metadata items are looked up by Name (``Balance`` may have no Value); failures have no
``CallbackMetadata``; ``TransactionDate`` is Nairobi time ``YYYYMMDDHHmmss``. The simulator's
callbacks are parsed here too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from console.kernel.phones import try_normalise_msisdn

from .base import CallbackParseError, StkResult, status_for_result_code
from .clean import clean_raw, safe_text
from .values import (
    amount_or_none,
    load_json_object,
    parse_eat_timestamp,
    parse_identifier,
    parse_result_code,
    receipt_or_none,
    success_amount,
    success_phone,
    success_receipt,
    success_time,
)


def parse_daraja_callback(body: bytes, *, now: datetime | None = None) -> StkResult:
    """Parse ``{"Body": {"stkCallback": {...}}}`` into an StkResult, or raise CallbackParseError.

    A success (ResultCode 0) must have CallbackMetadata with a plausible Amount, an M-Pesa-shaped
    MpesaReceiptNumber and, when given, a readable TransactionDate within the time window of
    ``now``; a PhoneNumber, when given, must be a phone number. Failures need no metadata; what
    they carry is read leniently (unusable values become None).
    """
    data = load_json_object(body, "Daraja")
    outer = data.get("Body")
    if not isinstance(outer, dict):
        raise CallbackParseError("Daraja callback is missing the Body object")
    cb = outer.get("stkCallback")
    if not isinstance(cb, dict):
        raise CallbackParseError("Daraja callback is missing Body.stkCallback")
    raw_checkout = cb.get("CheckoutRequestID")
    if not isinstance(raw_checkout, str) or not raw_checkout.strip():
        raise CallbackParseError("Daraja callback is missing Body.stkCallback.CheckoutRequestID")
    checkout = parse_identifier(raw_checkout, "Daraja callback Body.stkCallback.CheckoutRequestID")
    if "ResultCode" not in cb:
        raise CallbackParseError("Daraja callback is missing Body.stkCallback.ResultCode")
    code = parse_result_code(cb.get("ResultCode"), "Daraja callback Body.stkCallback.ResultCode")
    merchant = parse_identifier(
        cb.get("MerchantRequestID"), "Daraja callback Body.stkCallback.MerchantRequestID"
    )
    status = status_for_result_code(code)

    metadata = cb.get("CallbackMetadata")
    items = _metadata_items(metadata)
    if status == "success":
        if metadata is None:
            raise CallbackParseError("Daraja success callback has no CallbackMetadata (amount and receipt)")
        amount = success_amount(items.get("Amount"), "Amount")
        receipt = success_receipt(items.get("MpesaReceiptNumber"), "MpesaReceiptNumber")
        phone = success_phone(items.get("PhoneNumber"), "PhoneNumber")
        raw_date = items.get("TransactionDate")
        paid_at = None
        if raw_date is not None:
            paid_at = success_time(parse_eat_timestamp(raw_date), "TransactionDate", now)
    else:
        amount = amount_or_none(items.get("Amount"))
        receipt = receipt_or_none(items.get("MpesaReceiptNumber"))
        phone = try_normalise_msisdn(items.get("PhoneNumber"), as_reported=True)
        paid_at = parse_eat_timestamp(items.get("TransactionDate"))
    return StkResult(
        status=status,
        checkout_request_id=checkout,
        external_reference=None,  # Daraja callbacks do not echo the AccountReference
        merchant_request_id=merchant,
        result_code=code,
        result_desc=safe_text(cb.get("ResultDesc")),
        receipt=receipt,
        amount=amount,
        phone=phone,
        paid_at=paid_at,
        raw=clean_raw(data),
        gateway_reference=checkout,
    )


def _metadata_items(metadata: Any) -> dict[str, Any]:
    """``CallbackMetadata.Item`` list -> ``{Name: Value}``; items without a Value map to None.

    The same Name twice (two Amounts, two receipts) is refused: which one would be true?
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise CallbackParseError("Daraja callback CallbackMetadata must be an object")
    raw_items = metadata.get("Item", [])
    if isinstance(raw_items, dict):
        raw_items = [raw_items]
    if not isinstance(raw_items, list):
        raise CallbackParseError("Daraja callback CallbackMetadata.Item must be a list")
    items: dict[str, Any] = {}
    for item in raw_items:
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            name = item["Name"]
            if name in items:
                raise CallbackParseError(f"Daraja callback CallbackMetadata has {safe_text(name, 40)} twice")
            items[name] = item.get("Value")
    return items
