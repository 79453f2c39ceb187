"""A gateway that needs no network, for development, demos and tests.

``initiate_stk`` returns Daraja-looking ids at once. The simulated customer answers the prompt
``callback_delay`` seconds after it was sent (settings.SIMULATOR_CALLBACK_DELAY, 3 s; 0 = at once):

- by callback: the caller (a background task) waits that long, builds the body with
  :meth:`SimulatorGateway.build_callback` and posts it to the normal callback view, which parses it
  with the Daraja parser;
- by status query, like a real gateway: :meth:`SimulatorGateway.query_status` says "pending"
  (ResultCode 4999, "still under processing") until ``StatusQuery.sent_at`` + the delay, then the
  outcome the callback carries, with the same receipt (:func:`receipt_for`, one per
  CheckoutRequestID, dated by the day the prompt was sent).

Outcome by phone number (everything else succeeds):

====================  ====  ==============================
phone                 code  meaning
====================  ====  ==============================
``254700000001``      1032  customer cancelled the prompt
``254700000002``      1037  phone unreachable
``254700000003``      1     insufficient M-Pesa balance
``254700000004``      2001  wrong M-Pesa PIN
====================  ====  ==============================
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction

from console.kernel.clock import NAIROBI as EAT
from console.kernel.clock import now as eat_now
from console.kernel.mpesa import date_prefix
from console.kernel.phones import try_normalise_msisdn

from .base import (
    OFFICIAL_RESULT_DESCS,
    STILL_PROCESSING_CODE,
    Gateway,
    StatusQuery,
    StkAccepted,
    StkPushRequest,
    StkResult,
    normalise_result_code,
    status_for_result_code,
)
from .daraja import parse_daraja_callback
from .values import (
    amount_or_none,
    parse_eat_timestamp,
)

SIMULATED_FAILURES: dict[str, int] = {
    "254700000001": 1032,
    "254700000002": 1037,
    "254700000003": 1,
    "254700000004": 2001,
}

DEFAULT_CALLBACK_DELAY = 3.0  # seconds; settings.SIMULATOR_CALLBACK_DELAY
STILL_PROCESSING_DESC = "The transaction is still under processing"

_RNG = random.SystemRandom()
_RECEIPT_ALPHABET = string.ascii_uppercase + string.digits
# The simulator's CheckoutRequestID: ws_CO_ + DDMMYYYYHHmmss (Nairobi) + milliseconds + 9 digits.
_CHECKOUT_TIME_RE = re.compile(r"^ws_CO_([0-9]{14})([0-9]{3})[0-9]{9}$")


def simulated_result_code(phone: str) -> int:
    """The ResultCode the simulator will report for ``phone`` (0 unless listed above)."""
    return SIMULATED_FAILURES.get(phone, 0)


def sent_time_from_checkout(checkout_request_id: str | None) -> datetime | None:
    """When the simulator sent the prompt, read back from its CheckoutRequestID (None if not one)."""
    match = _CHECKOUT_TIME_RE.match(checkout_request_id or "")
    if not match:
        return None
    try:
        sent = datetime.strptime(match.group(1), "%d%m%Y%H%M%S").replace(tzinfo=EAT)
    except ValueError:
        return None
    return sent + timedelta(milliseconds=int(match.group(2)))


def receipt_for(
    checkout_request_id: str, now: datetime | None = None, *, sent_at: datetime | None = None
) -> str:
    """The receipt the simulator gives one prompt: the same for its callback and its status query.

    Its 3 date characters are the (Nairobi) day the prompt was sent: ``sent_at`` when given, else
    the send time in a simulator CheckoutRequestID, else ``now`` (default: today). So a prompt sent
    at 23:59:59 gets the same receipt from a callback or a query made after midnight.
    """
    when = _aware(sent_at) or sent_time_from_checkout(checkout_request_id) or now or eat_now()
    day = when.astimezone(EAT)
    digest = hashlib.sha256(checkout_request_id.encode()).digest()
    return date_prefix(day) + "".join(_RECEIPT_ALPHABET[b % len(_RECEIPT_ALPHABET)] for b in digest[:7])


def _json_amount(amount: Any) -> int | float:
    value = Decimal(str(amount))
    return int(value) if value == value.to_integral_value() else float(value)


def _aware(when: datetime | None) -> datetime | None:
    """A naive datetime is taken as Nairobi time (the simulator's clock)."""
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=EAT)


class SimulatorGateway(Gateway):
    name = "simulator"

    def __init__(
        self,
        callback_delay: float = DEFAULT_CALLBACK_DELAY,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.callback_delay = max(0.0, float(callback_delay))
        self._now = clock or eat_now  # replaceable in tests

    def initiate_stk(self, req: StkPushRequest) -> StkAccepted:
        now = self._now().astimezone(EAT)
        checkout = "ws_CO_" + now.strftime("%d%m%Y%H%M%S") + f"{now.microsecond // 1000:03d}" + _digits(9)
        merchant = f"{_RNG.randint(10000, 99999)}-{_RNG.randint(10000000, 99999999)}-1"
        raw_request = {
            "Amount": int(req.amount),
            "PartyA": req.phone,
            "PhoneNumber": req.phone,
            "CallBackURL": req.callback_url,
            "AccountReference": req.account_reference,
            "TransactionDesc": req.description,
        }
        raw_response = {
            "MerchantRequestID": merchant,
            "CheckoutRequestID": checkout,
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        }
        return StkAccepted(
            checkout_request_id=checkout,
            merchant_request_id=merchant,
            gateway_reference=checkout,
            raw_request=raw_request,
            raw_response=raw_response,
        )

    def query_status(self, q: StatusQuery) -> StkResult:
        """Answer like the STK query of a real gateway.

        "Pending" (ResultCode 4999) until the simulated customer acts, ``callback_delay`` seconds
        after ``q.sent_at`` (or the send time in the CheckoutRequestID; unknown = at once); then
        the outcome the callback carries, with the same receipt. Without the phone and amount (an
        old caller) it can only say pending. Never raises a parse error.
        """
        if not q.phone or q.amount is None or not q.checkout_request_id:
            return self._pending(q, None, "The simulator needs the phone and amount to answer a query")
        now = self._now()
        sent_at = _aware(q.sent_at) or sent_time_from_checkout(q.checkout_request_id)
        answered_at = now
        if sent_at is not None:
            answered_at = sent_at + timedelta(seconds=self.callback_delay)
            if now < answered_at:
                return self._pending(q, STILL_PROCESSING_CODE, STILL_PROCESSING_DESC)
        result_code = self.result_code_for(q.phone)
        code = normalise_result_code(result_code) or "0"
        receipt = receipt_for(q.checkout_request_id, answered_at, sent_at=sent_at)
        body = self.build_callback(
            q.checkout_request_id, "", q.amount, q.phone, result_code, now=answered_at, receipt=receipt
        )
        success = code == "0"
        items = (
            {i["Name"]: i["Value"] for i in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]}
            if success
            else {}
        )
        return StkResult(
            status=status_for_result_code(code),
            checkout_request_id=q.checkout_request_id,
            external_reference=q.order_reference,
            merchant_request_id=None,
            result_code=code,
            result_desc=body["Body"]["stkCallback"]["ResultDesc"],
            receipt=receipt if success else None,
            amount=amount_or_none(items.get("Amount")) if success else None,
            phone=try_normalise_msisdn(q.phone, as_reported=True) if success else None,
            paid_at=parse_eat_timestamp(items.get("TransactionDate")) if success else None,
            raw=body,
            gateway_reference=q.gateway_reference,
        )

    @staticmethod
    def _pending(q: StatusQuery, code: str | None, desc: str) -> StkResult:
        return StkResult(
            status="pending",
            checkout_request_id=q.checkout_request_id,
            external_reference=q.order_reference,
            merchant_request_id=None,
            result_code=code,
            result_desc=desc,
            receipt=None,
            amount=None,
            phone=None,
            paid_at=None,
            raw={"ResultCode": code, "ResultDesc": desc} if code else {},
            gateway_reference=q.gateway_reference or q.checkout_request_id,
        )

    @classmethod
    def parse_callback(cls, body: bytes) -> StkResult:
        return parse_daraja_callback(body)

    def after_send(self, stk_id: int) -> None:
        """Play the customer: once the accepted prompt is committed, queue its simulated callback."""
        # Imported here: django_q.tasks loads Django models, and this package imports none at load.
        from django_q.tasks import async_task

        transaction.on_commit(
            lambda: async_task(
                "ledger.tasks.simulator_callback_deliver", stk_id, task_name=f"simulate-stk-{stk_id}"
            )
        )

    @staticmethod
    def result_code_for(phone: str) -> int:
        return simulated_result_code(phone)

    @staticmethod
    def build_callback(
        checkout_request_id: str,
        merchant_request_id: str,
        amount: int | Decimal,
        phone: str,
        result_code: int | str,
        *,
        now: datetime | None = None,
        receipt: str | None = None,
        sent_at: datetime | None = None,
    ) -> dict:
        """An exact Daraja STK callback body (formats doc §1.4) for the given outcome.

        ``now`` is the transaction time (default: now); the receipt is :func:`receipt_for` the
        prompt (dated by ``sent_at`` when given) unless ``receipt`` is given.
        """
        code = normalise_result_code(result_code) or "0"
        json_code: int | str = int(code) if code.lstrip("-").isdigit() else code
        callback: dict[str, Any] = {
            "MerchantRequestID": merchant_request_id,
            "CheckoutRequestID": checkout_request_id,
            "ResultCode": json_code,
            "ResultDesc": OFFICIAL_RESULT_DESCS.get(code, "The service request failed."),
        }
        if code == "0":
            when = (now or eat_now()).astimezone(EAT)
            callback["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": _json_amount(amount)},
                    {
                        "Name": "MpesaReceiptNumber",
                        "Value": receipt or receipt_for(checkout_request_id, when, sent_at=sent_at),
                    },
                    {"Name": "TransactionDate", "Value": int(when.strftime("%Y%m%d%H%M%S"))},
                    {"Name": "PhoneNumber", "Value": int(phone)},
                ]
            }
        return {"Body": {"stkCallback": callback}}


def _digits(n: int) -> str:
    return "".join(_RNG.choice(string.digits) for _ in range(n))
