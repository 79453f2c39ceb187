"""A gateway that needs no network, for development, demos and tests.

``initiate_stk`` returns Daraja-looking ids at once. The simulator answers only by callback: the
caller (a background task) builds the body with :meth:`SimulatorGateway.build_callback` and posts
it to the normal callback view, which parses it with the Daraja parser. ``query_status`` therefore
always says "pending".

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
import json
import random
import string
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from .base import (
    EAT,
    OFFICIAL_RESULT_DESCS,
    Gateway,
    StatusQuery,
    StkAccepted,
    StkPushRequest,
    StkResult,
    eat_now,
    normalise_result_code,
)
from .daraja import parse_daraja_callback

SIMULATED_FAILURES: dict[str, int] = {
    "254700000001": 1032,
    "254700000002": 1037,
    "254700000003": 1,
    "254700000004": 2001,
}

_RNG = random.SystemRandom()
_RECEIPT_ALPHABET = string.ascii_uppercase + string.digits


def simulated_result_code(phone: str) -> int:
    """The ResultCode the simulator will report for ``phone`` (0 unless listed above)."""
    return SIMULATED_FAILURES.get(phone, 0)


def receipt_prefix(day: datetime) -> str:
    """The 3 date characters of an M-Pesa code (formats doc §3.5): year (L=2017, M=2018, …),
    month (A=Jan … L=Dec), day (1-9, then A=10 … V=31)."""
    year = chr(ord("A") + (day.year - 2017 + 11) % 26)
    month = chr(ord("A") + day.month - 1)
    dom = str(day.day) if day.day < 10 else chr(ord("A") + day.day - 10)
    return f"{year}{month}{dom}"


def receipt_for(checkout_request_id: str, now: datetime | None = None) -> str:
    """The receipt the simulator gives one prompt: the same for its callback and its status query."""
    day = (now or eat_now()).astimezone(EAT)
    digest = hashlib.sha256(checkout_request_id.encode()).digest()
    return receipt_prefix(day) + "".join(_RECEIPT_ALPHABET[b % len(_RECEIPT_ALPHABET)] for b in digest[:7])


def _json_amount(amount: Any) -> int | float:
    value = Decimal(str(amount))
    return int(value) if value == value.to_integral_value() else float(value)


class SimulatorGateway(Gateway):
    name = "simulator"

    def initiate_stk(self, req: StkPushRequest) -> StkAccepted:
        now = eat_now()
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
        """Answer like the STK query of a real gateway: the outcome the callback would carry.

        Without the phone and amount (an old caller) it can only say pending.
        """
        if not q.phone or q.amount is None or not q.checkout_request_id:
            return StkResult(
                status="pending",
                checkout_request_id=q.checkout_request_id,
                external_reference=q.order_reference,
                merchant_request_id=None,
                result_code=None,
                result_desc="The simulator needs the phone and amount to answer a query",
                receipt=None,
                amount=None,
                phone=None,
                paid_at=None,
                raw={},
                gateway_reference=q.gateway_reference or q.checkout_request_id,
            )
        body = self.build_callback(
            q.checkout_request_id, "", q.amount, q.phone, self.result_code_for(q.phone)
        )
        result = self.parse_callback(json.dumps(body).encode())
        return replace(result, external_reference=q.order_reference, gateway_reference=q.gateway_reference)

    def parse_callback(self, body: bytes) -> StkResult:
        return parse_daraja_callback(body)

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
    ) -> dict:
        """An exact Daraja STK callback body (formats doc §1.4) for the given outcome."""
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
                        "Value": receipt or receipt_for(checkout_request_id, when),
                    },
                    {"Name": "TransactionDate", "Value": int(when.strftime("%Y%m%d%H%M%S"))},
                    {"Name": "PhoneNumber", "Value": int(phone)},
                ]
            }
        return {"Body": {"stkCallback": callback}}


def _digits(n: int) -> str:
    return "".join(_RNG.choice(string.digits) for _ in range(n))
