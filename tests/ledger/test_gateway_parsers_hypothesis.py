"""Property tests for the callback parsers: whatever arrives, the parser either returns an StkResult or
raises CallbackParseError (never anything else), and a success it returns is always plausible."""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.kernel.clock import NAIROBI
from console.kernel.plausible import max_payment_amount
from ledger.gateways.base import CallbackParseError, StkResult
from ledger.gateways.daraja import parse_daraja_callback
from ledger.gateways.payhero import parse_payhero_callback

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=3)
SKEW = timedelta(seconds=300)
RECEIPT_RE = re.compile(r"^[A-Z][A-Z0-9]{9}$")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS = {"daraja": parse_daraja_callback, "payhero": parse_payhero_callback}

# -- strategies --------------------------------------------------------------------------------
hostile_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\ud800",
            "\udfff",
            "NaN",
            "Infinity",
            "-0",
            "0",
            "1e3",
            "0x10",
            "½",
            "٣",
            "٠",
            "０",
            "１５０",
        ]
    ),
)
numeric_edges = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10, max_value=300_000).map(float),
    st.sampled_from(
        [
            0,
            -0.0,
            1,
            1.0,
            1.5,
            0.001,
            150.004,
            150.005,
            1e20,
            1e-7,
            249_999.99,
            250_000,
            250_000.01,
            2**63,
            10**400,
        ]
    ),
    st.sampled_from(["0", "150", "150.00", "150.004", "-1", "1e3", " 150 ", "abc", "NaN", "Infinity", "0.0"]),
    st.booleans(),
    st.none(),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)
anything = st.one_of(numeric_edges, json_values, hostile_text)
receipts = st.one_of(
    st.sampled_from(
        ["NLJ7RT61SV", "nlj7rt61sv", " NLJ7RT61SV ", "NLJ7RT61S", "1LJ7RT61SV", "NLJ7RT61SV\x00"]
    ),
    st.from_regex(r"\A[A-Za-z][A-Za-z0-9]{9}\Z"),
    anything,
)
near_now = st.floats(min_value=-5 * 86400, max_value=5 * 86400).map(lambda s: NOW + timedelta(seconds=s))
daraja_dates = st.one_of(
    near_now.map(lambda d: int(d.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))),
    near_now.map(lambda d: d.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")),
    st.sampled_from([0, 20191219102115, "00010101000000", "99991231235959", 2019121910211, "yesterday"]),
    anything,
)
iso_dates = st.one_of(
    near_now.map(lambda d: d.isoformat()),
    near_now.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59Z", "2026-13-01T00:00:00Z", ""]),
    anything,
)
result_codes = st.one_of(
    numeric_edges, st.sampled_from([0, "0", 1032, "1032", 4999, "SFC_IC0003", 0.0]), anything
)


def maybe(strategy):
    """A value, or the key left out altogether."""
    return st.one_of(st.just(KeyError), strategy)


def put(target: dict, key: str, value) -> None:
    if value is not KeyError:
        target[key] = value


# -- invariants ---------------------------------------------------------------------------------
def check(parse, body: bytes) -> StkResult | None:
    try:
        result = parse(body, now=NOW)
    except CallbackParseError as exc:
        assert isinstance(exc.message, str) and exc.message
        assert "\x00" not in exc.message
        return None
    assert isinstance(result, StkResult)
    assert result.status in ("success", "failed", "pending")
    assert not CONTROL_RE.search(result.result_desc)
    for ident in (result.checkout_request_id, result.merchant_request_id, result.external_reference):
        assert ident is None or (isinstance(ident, str) and len(ident) <= 64 and not CONTROL_RE.search(ident))
    # Storable in PostgreSQL jsonb: strict JSON (no NaN), no NUL, no lone surrogates (UTF-8 encodable).
    dumped = json.dumps(result.raw, ensure_ascii=False, allow_nan=False)
    assert "\x00" not in dumped
    dumped.encode("utf-8")
    if result.phone is not None:
        assert re.fullmatch(r"[0-9]{1,15}", result.phone)
    if result.status == "success":
        assert result.result_code in (None, "0")
        assert isinstance(result.amount, Decimal)
        assert result.amount.is_finite()
        assert result.amount > 0
        assert result.amount == result.amount.quantize(Decimal("0.01"))
        assert result.amount.as_tuple().exponent == -2
        assert result.amount < max_payment_amount()
        assert isinstance(result.receipt, str) and RECEIPT_RE.match(result.receipt)
        if result.paid_at is not None:
            assert result.paid_at.tzinfo is not None
            assert NOW - WINDOW <= result.paid_at <= NOW + SKEW
    return result


# -- any input at all ---------------------------------------------------------------------------
@pytest.mark.parametrize("gateway", sorted(PARSERS))
@FAST
@given(body=st.binary(max_size=300))
@example(body=b"\xff\xfe")
@example(body=b"[" * 10_000)
@example(body=b'{"a": NaN}')
def test_random_bytes(gateway, body):
    check(PARSERS[gateway], body)


@pytest.mark.parametrize("gateway", sorted(PARSERS))
@FAST
@given(value=json_values)
def test_random_json(gateway, value):
    check(PARSERS[gateway], json.dumps(value).encode())  # floats nan/inf come out as NaN/Infinity


@pytest.mark.parametrize("gateway", sorted(PARSERS))
@FAST
@given(value=json_values, wrapper=st.sampled_from(["Body", "stkCallback", "response"]))
def test_random_json_in_the_right_envelope(gateway, value, wrapper):
    if wrapper == "response":
        body = {"status": True, "response": value}
    elif wrapper == "stkCallback":
        body = {"Body": {"stkCallback": value}}
    else:
        body = {"Body": value}
    check(PARSERS[gateway], json.dumps(body).encode())


# -- well-shaped bodies with hostile values -----------------------------------------------------
@FAST
@given(
    amount=maybe(numeric_edges),
    code=result_codes,
    receipt=maybe(receipts),
    date=maybe(daraja_dates),
    phone=maybe(st.one_of(st.just(254708374149), st.just("+254708374149"), anything)),
    checkout=st.one_of(st.just("ws_CO_191220191020363925"), hostile_text, anything),
    merchant=maybe(st.one_of(st.just("29115-34620561-1"), anything)),
    desc=anything,
    with_metadata=st.booleans(),
    extra_items=st.lists(st.fixed_dictionaries({"Name": hostile_text, "Value": anything}), max_size=2),
)
@example(  # the official sample, dated today
    amount=1.0,
    code=0,
    receipt="NLJ7RT61SV",
    date=int(NOW.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")),
    phone=254708374149,
    checkout="ws_CO_191220191020363925",
    merchant="29115-34620561-1",
    desc="The service request is processed successfully.",
    with_metadata=True,
    extra_items=[],
)
def test_daraja_shaped_bodies(
    amount, code, receipt, date, phone, checkout, merchant, desc, with_metadata, extra_items
):
    callback = {"CheckoutRequestID": checkout, "ResultCode": code, "ResultDesc": desc}
    put(callback, "MerchantRequestID", merchant)
    if with_metadata:
        items = []
        for name, value in (
            ("Amount", amount),
            ("MpesaReceiptNumber", receipt),
            ("TransactionDate", date),
            ("PhoneNumber", phone),
        ):
            if value is not KeyError:
                items.append({"Name": name, "Value": value})
        callback["CallbackMetadata"] = {"Item": items + extra_items}
    result = check(parse_daraja_callback, json.dumps({"Body": {"stkCallback": callback}}).encode())
    if result is not None and result.status == "success":
        assert with_metadata and amount is not KeyError and receipt is not KeyError


@FAST
@given(
    amount=maybe(numeric_edges),
    code=result_codes,
    receipt=maybe(receipts),
    phone=maybe(st.one_of(st.just("+254709099876"), anything)),
    checkout=maybe(st.one_of(st.just("ws_CO_02012026103543427709099876"), anything)),
    external=maybe(st.one_of(st.just("INV-009"), anything)),
    top_status=maybe(st.one_of(st.booleans(), anything)),
)
@example(
    amount=10,
    code=0,
    receipt="SAE3YULR0Y",
    phone="+254709099876",
    checkout="ws_CO_02012026103543427709099876",
    external="INV-009",
    top_status=True,
)
def test_payhero_nested_bodies(amount, code, receipt, phone, checkout, external, top_status):
    inner = {"ResultCode": code, "ResultDesc": "x", "Status": "Success"}
    put(inner, "Amount", amount)
    put(inner, "MpesaReceiptNumber", receipt)
    put(inner, "Phone", phone)
    put(inner, "CheckoutRequestID", checkout)
    put(inner, "ExternalReference", external)
    body = {"forward_url": "", "response": inner}
    put(body, "status", top_status)
    result = check(parse_payhero_callback, json.dumps(body).encode())
    if result is not None and result.status == "success":
        assert top_status is not False


@FAST
@given(
    status=st.one_of(
        st.sampled_from(["success", "Success", "failed", "pending", "completed", "succ\x00ess"]), anything
    ),
    amount=maybe(numeric_edges),
    receipt=maybe(receipts),
    date=maybe(iso_dates),
    code=maybe(result_codes),
    currency=maybe(st.one_of(st.sampled_from(["KES", "kes", "USD"]), anything)),
    reference=maybe(st.one_of(st.just("UFD004453187.iI"), anything)),
    external=maybe(st.one_of(st.just("test_ext"), anything)),
)
@example(
    status="success",
    amount=1,
    receipt="UFU51A2XO2",
    date="2026-11-30T11:00:00Z",
    code=KeyError,
    currency="KES",
    reference="UFD004453187.iI",
    external="test_ext",
)
def test_payhero_flat_bodies(status, amount, receipt, date, code, currency, reference, external):
    body = {"status": status, "success": True, "message": "…"}
    put(body, "amount", amount)
    put(body, "provider_reference", receipt)
    put(body, "transaction_date", date)
    put(body, "ResultCode", code)
    put(body, "currency", currency)
    put(body, "reference", reference)
    put(body, "external_reference", external)
    check(parse_payhero_callback, json.dumps(body).encode())


# -- valid bodies with one field replaced: successes are common here -----------------------------
valid_amounts = st.one_of(
    st.integers(min_value=1, max_value=249_999),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("249999.99"), places=2).map(float),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("249999.99"), places=2).map(str),
)
DARAJA_FIELDS = [
    "Amount",
    "MpesaReceiptNumber",
    "TransactionDate",
    "PhoneNumber",
    "ResultCode",
    "CheckoutRequestID",
]
FIELD_VALUES = {
    "Amount": st.one_of(valid_amounts, numeric_edges),
    "MpesaReceiptNumber": receipts,
    "TransactionDate": daraja_dates,
    "PhoneNumber": st.one_of(st.integers(min_value=0, max_value=10**16), anything),
    "ResultCode": result_codes,
    "CheckoutRequestID": st.one_of(st.text(min_size=1, max_size=70), anything),
}


@FAST
@given(data=st.data(), field=st.sampled_from(DARAJA_FIELDS))
def test_daraja_one_field_at_a_time(data, field):
    value = data.draw(FIELD_VALUES[field], label=field)
    items = {
        "Amount": data.draw(valid_amounts, label="valid amount"),
        "MpesaReceiptNumber": "NLJ7RT61SV",
        "TransactionDate": int(NOW.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")),
        "PhoneNumber": 254708374149,
    }
    callback = {
        "MerchantRequestID": "1-2-3",
        "CheckoutRequestID": "ws_CO_1",
        "ResultCode": 0,
        "ResultDesc": "ok",
    }
    if field in items:
        items[field] = value
    else:
        callback[field] = value
    callback["CallbackMetadata"] = {"Item": [{"Name": k, "Value": v} for k, v in items.items()]}
    result = check(parse_daraja_callback, json.dumps({"Body": {"stkCallback": callback}}).encode())
    if field == "Amount" and result is not None:
        assert result.amount == Decimal(str(value)).quantize(Decimal("0.01"))


@FAST
@given(data=st.data(), field=st.sampled_from(["Amount", "MpesaReceiptNumber", "ResultCode", "Phone"]))
def test_payhero_nested_one_field_at_a_time(data, field):
    values = {**FIELD_VALUES, "Phone": st.one_of(st.just("+254709099876"), anything)}
    inner = {
        "Amount": data.draw(valid_amounts, label="valid amount"),
        "CheckoutRequestID": "ws_CO_1",
        "ExternalReference": "INV-009",
        "MpesaReceiptNumber": "SAE3YULR0Y",
        "Phone": "+254709099876",
        "ResultCode": 0,
    }
    inner[field] = data.draw(values[field], label=field)
    check(parse_payhero_callback, json.dumps({"status": True, "response": inner}).encode())


@FAST
@given(data=st.data(), field=st.sampled_from(["amount", "provider_reference", "transaction_date", "status"]))
def test_payhero_flat_one_field_at_a_time(data, field):
    values = {
        "amount": FIELD_VALUES["Amount"],
        "provider_reference": receipts,
        "transaction_date": iso_dates,
        "status": st.one_of(st.sampled_from(["success", "failed", "SUCCESS"]), anything),
    }
    body = {
        "success": True,
        "status": "success",
        "reference": "UFD004453187.iI",
        "external_reference": "test_ext",
        "amount": data.draw(valid_amounts, label="valid amount"),
        "currency": "KES",
        "transaction_date": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "provider_reference": "UFU51A2XO2",
    }
    body[field] = data.draw(values[field], label=field)
    check(parse_payhero_callback, json.dumps(body).encode())


# -- literals Python's json would read but JSON does not have ------------------------------------
LITERALS = [
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1" * 5000,
    "1e-400",
    "0e0",
    "-0",
    "1E2",
]


@pytest.mark.parametrize("field", ["Amount", "ResultCode", "TransactionDate", "PhoneNumber"])
@pytest.mark.parametrize("literal", LITERALS)
def test_daraja_numeric_literals(field, literal):
    items = [
        {"Name": "Amount", "Value": 150},
        {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
        {"Name": "TransactionDate", "Value": int(NOW.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))},
        {"Name": "PhoneNumber", "Value": 254708374149},
    ]
    callback = {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0, "CallbackMetadata": {"Item": items}}
    if field == "ResultCode":
        callback["ResultCode"] = "__X__"
    else:
        next(i for i in items if i["Name"] == field)["Value"] = "__X__"
    body = json.dumps({"Body": {"stkCallback": callback}}).encode().replace(b'"__X__"', literal.encode())
    check(parse_daraja_callback, body)


@pytest.mark.parametrize("field", ["Amount", "ResultCode"])
@pytest.mark.parametrize("literal", LITERALS)
def test_payhero_numeric_literals(field, literal):
    inner = {
        "Amount": 10,
        "ResultCode": 0,
        "MpesaReceiptNumber": "SAE3YULR0Y",
        "ExternalReference": "INV-009",
    }
    inner[field] = "__X__"
    body = json.dumps({"status": True, "response": inner}).encode().replace(b'"__X__"', literal.encode())
    check(parse_payhero_callback, body)
