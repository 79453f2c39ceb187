"""Hostile C2B bodies: never a 500, never a receipt or journal entry unless the body is a
well-formed payment in range; every refused body is kept (as rejected) for investigation.

Explicit cases pin each rule; property-based tests (hypothesis) throw random JSON, random
bytes, deep nesting and every numeric edge of TransAmount at both endpoints.
"""

import datetime as dt
import json
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ledger.models import CallbackLog, CallbackOutcome, CallbackSource, JournalEntry
from reconciliation.models import TillReceipt

pytestmark = pytest.mark.django_db
TOKEN = "test-c2b-token"
NAIROBI = ZoneInfo("Africa/Nairobi")
KINDS = ["confirmation", "validation"]
MPESA_CODE = re.compile(r"^[A-Z][A-Z0-9]{9}$")
PROPERTY = hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _c2b_settings(settings):
    settings.C2B_CALLBACK_TOKEN = TOKEN
    settings.STK_CALLBACK_TOKEN = "test-stk-token"
    settings.CALLBACK_ALLOWED_IPS = []


def trans_time(delta: dt.timedelta = dt.timedelta(minutes=-10)) -> str:
    """TransTime as Daraja writes it (Nairobi local time, no zone), ``delta`` from now."""
    return (timezone.now() + delta).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def payment(**changes) -> dict:
    body = {
        "TransactionType": "Buy Goods",
        "TransID": "UCA7RKL51Z",
        "TransTime": trans_time(),
        "TransAmount": "250.00",
        "BusinessShortCode": "6944804",
        "BillRefNumber": "",
        "OrgAccountBalance": "25.00",
        "MSISDN": "2547 ***** 126",
        "FirstName": "NICHOLAS",
    }
    return body | changes


def post(client, kind: str, body, token: str = TOKEN):
    if isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode("utf-8", "surrogatepass")
    else:
        data = json.dumps(body)
    return client.post(f"/api/callbacks/c2b/{token}/{kind}", data=data, content_type="application/json")


def nothing_recorded() -> bool:
    return not TillReceipt.objects.exists() and not JournalEntry.objects.exists()


def a_payment_with(field: str, raw_json_value: str) -> str:
    """A good payment whose ``field`` is replaced by a raw JSON fragment (NaN, 1e400, deep…)."""
    body = json.dumps(payment() | {field: "__VALUE__"})
    return body.replace('"__VALUE__"', raw_json_value)


# ---------------------------------------------------------------------------------------------
# Explicit cases
# ---------------------------------------------------------------------------------------------
HOSTILE = {
    "NUL escape in a name": a_payment_with("FirstName", '"NICH\\u0000OLAS"'),
    "NUL escape in TransID": a_payment_with("TransID", '"UCA7RKL51Z\\u0000"'),
    "NUL escape in an unknown key": json.dumps(payment()).replace("{", '{"x\\u0000": 1, ', 1),
    "NUL escape deep inside an extra field": a_payment_with("Extra", '[{"a": ["\\u0000"]}]'),
    "lone surrogate in a name": a_payment_with("FirstName", '"\\ud800"'),
    "amount 1e20 (number)": a_payment_with("TransAmount", "1e20"),
    "amount 1e20 (text)": json.dumps(payment(TransAmount="1e20")),
    "amount 0.001": a_payment_with("TransAmount", "0.001"),
    "amount '0.001'": json.dumps(payment(TransAmount="0.001")),
    "amount 0": a_payment_with("TransAmount", "0"),
    "amount '0.00'": json.dumps(payment(TransAmount="0.00")),
    "amount negative": a_payment_with("TransAmount", "-250"),
    "amount '-250.00'": json.dumps(payment(TransAmount="-250.00")),
    "amount NaN": a_payment_with("TransAmount", "NaN"),
    "amount 'NaN'": json.dumps(payment(TransAmount="NaN")),
    "amount Infinity": a_payment_with("TransAmount", "Infinity"),
    "amount -Infinity": a_payment_with("TransAmount", "-Infinity"),
    "amount 1e400 (inf)": a_payment_with("TransAmount", "1e400"),
    "amount 'Infinity'": json.dumps(payment(TransAmount="Infinity")),
    # Decided: refused. Daraja sends "1500.00"; a comma is ambiguous (thousands or decimals).
    "amount '1,500'": json.dumps(payment(TransAmount="1,500")),
    "amount at the maximum": json.dumps(payment(TransAmount="250000")),
    "amount in full-width digits": json.dumps(payment(TransAmount="２５０")),
    "amount empty": json.dumps(payment(TransAmount="")),
    "amount missing": json.dumps({k: v for k, v in payment().items() if k != "TransAmount"}),
    "amount true": a_payment_with("TransAmount", "true"),
    "amount a list": a_payment_with("TransAmount", "[250]"),
    "amount with 5,000 digits": a_payment_with("TransAmount", "9" * 5000),
    "time year 1": json.dumps(payment(TransTime="00010101000000")),
    "time year 9999": json.dumps(payment(TransTime="99991231235959")),
    "time four days ago": json.dumps(payment(TransTime=trans_time(-dt.timedelta(days=4)))),
    "time an hour ahead": json.dumps(payment(TransTime=trans_time(dt.timedelta(hours=1)))),
    "time month 13": json.dumps(payment(TransTime="20261301000000")),
    "time 13 digits": json.dumps(payment(TransTime=trans_time()[:-1])),
    "time in full-width digits": json.dumps(payment(TransTime="２" * 14)),
    "time ISO 8601": json.dumps(payment(TransTime=timezone.now().isoformat())),
    "TransID too short": json.dumps(payment(TransID="UCA7RKL51")),
    "TransID starting with a digit": json.dumps(payment(TransID="1CA7RKL51Z")),
    "TransID with punctuation": json.dumps(payment(TransID="UCA7RKL5'Z")),
    "TransID a number": a_payment_with("TransID", "1234567890"),
    "TransID missing": json.dumps({k: v for k, v in payment().items() if k != "TransID"}),
    "MSISDN an object": a_payment_with("MSISDN", '{"a": 1}'),
    "10,000-deep JSON": "[" * 10_000 + "]" * 10_000,
    "10,000-deep value": a_payment_with("Extra", "[" * 10_000 + "]" * 10_000),
    "10,000-deep object": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "not JSON": "TransID=UCA7RKL51Z&TransAmount=250",
    "empty body": "",
    "a list": json.dumps([payment()]),
    "null": "null",
    "a string": '"UCA7RKL51Z"',
    "invalid UTF-8": b'{"TransID": "UCA7RKL51Z", "FirstName": "\xff\xfe"}',
    "UTF-16": json.dumps(payment()).encode("utf-16"),
    "raw NUL byte": json.dumps(payment()).encode().replace(b'"NICHOLAS"', b'"NICH\x00OLAS"'),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_body_is_400_stored_as_rejected_and_records_nothing(client, kind, body):
    response = post(client, kind, body)
    assert response.status_code == 400
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and log.authenticated
    assert log.detail.startswith("Not a C2B payment")
    assert "\x00" not in log.body and "\x00" not in log.detail
    assert nothing_recorded()


def test_an_amount_just_below_the_maximum_and_a_json_number_are_payments(client):
    assert post(client, "confirmation", a_payment_with("TransAmount", "249999.99")).status_code == 200
    assert TillReceipt.objects.get().amount == Decimal("249999.99")
    body = a_payment_with("TransAmount", "150").replace("UCA7RKL51Z", "UCA7RKL52Z")
    assert post(client, "confirmation", body).status_code == 200
    assert TillReceipt.objects.get(code="UCA7RKL52Z").amount == Decimal("150.00")


def test_control_characters_in_names_are_dropped_not_stored(client):
    response = post(client, "confirmation", payment(FirstName="NICH\x07OLAS\n", MSISDN="2547\x1b***126"))
    assert response.status_code == 200
    receipt = TillReceipt.objects.get()
    assert receipt.payer_name == "NICHOLAS" and receipt.payer_masked == "2547***126"


@pytest.mark.parametrize("kind", KINDS)
def test_oversized_body_is_413_and_only_an_excerpt_is_kept(client, settings, kind):
    settings.CALLBACK_MAX_BODY_BYTES = 4096
    body = payment(Padding="x" * 10_000)
    response = post(client, kind, body)
    assert response.status_code == 413
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and log.body_truncated
    assert log.body_size == len(json.dumps(body)) and len(log.body) <= 4096
    assert nothing_recorded()


@pytest.mark.parametrize("kind", KINDS)
def test_unauthenticated_requests_keep_an_excerpt_and_are_rate_limited(client, settings, kind):
    settings.CALLBACK_REJECTED_RATE = "3/m"
    responses = [post(client, kind, payment(Padding="x" * 5000), token="guess").status_code for _ in range(5)]
    assert responses == [403, 403, 403, 429, 429]
    logs = CallbackLog.objects.all()
    assert len(logs) == 3 and not any(log.authenticated for log in logs)
    assert all(log.body_truncated and len(log.body) <= settings.CALLBACK_EXCERPT_BYTES for log in logs)
    assert nothing_recorded()


def test_the_stk_token_does_not_open_the_c2b_door(client):
    assert post(client, "confirmation", payment(), token="test-stk-token").status_code == 403
    assert nothing_recorded()


def test_a_stored_confirmation_is_applied_once_by_a_retry(client):
    """c2b_confirmation_apply is what a worker would run on a stored confirmation: idempotent."""
    from reconciliation.services.receipts import c2b_confirmation_apply

    post(client, "confirmation", payment())
    log = CallbackLog.objects.get()
    assert c2b_confirmation_apply(log=log) == CallbackOutcome.DUPLICATE
    assert TillReceipt.objects.count() == 1 and JournalEntry.objects.count() == 1


def test_a_stored_confirmation_retried_after_the_window_or_unauthenticated_is_rejected(client):
    from reconciliation.services.receipts import c2b_confirmation_apply

    stale = CallbackLog.objects.create(
        source=CallbackSource.C2B_CONFIRMATION,
        body=json.dumps(payment(TransTime=trans_time(-dt.timedelta(days=4)))),
    )
    forged = CallbackLog.objects.create(
        source=CallbackSource.C2B_CONFIRMATION, body=json.dumps(payment()), authenticated=False
    )
    for log in (stale, forged):
        assert c2b_confirmation_apply(log=log) == CallbackOutcome.REJECTED
        log.refresh_from_db()
        assert log.outcome == CallbackOutcome.REJECTED and log.detail and log.next_attempt_at is None
    assert nothing_recorded()


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
mpesa_codes = st.from_regex(r"[A-Z][A-Z0-9]{9}", fullmatch=True)
numeric_edges = st.sampled_from(
    [
        "0", "0.00", "0.001", "0.01", "1", "1.005", "1e20", "1E2", "250000", "249999.99", "250000.01",
        "-1", "+1", " 250 ", "1,500", "1_000", "0x10", "NaN", "nan", "Infinity", "inf", "", ".5", "5.",
        "00000000000000000001", "9" * 16, "1" * 400,
    ]
)  # fmt: skip
amounts = (
    numeric_edges
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str)
    | st.decimals(min_value=Decimal("0.01"), max_value=Decimal("249999.99"), places=2)
    .map(lambda d: d.quantize(Decimal("0.01")))
    .map(str)
    | json_scalars
)
offsets = st.integers(min_value=-6 * 86400, max_value=2 * 86400).map(lambda s: dt.timedelta(seconds=s))
times = offsets.map(trans_time) | st.text(max_size=16) | st.integers() | st.just("00010101000000")
payments = st.fixed_dictionaries(
    {
        "TransID": mpesa_codes | st.text(max_size=12) | json_scalars,
        "TransAmount": amounts,
        "TransTime": times,
        "MSISDN": st.text(max_size=20) | json_values,
        "FirstName": st.text(max_size=20) | json_scalars,
    },
    optional={"Extra": json_values},
)


def _counts():
    return TillReceipt.objects.count(), JournalEntry.objects.count()


def _assert_only_plausible_receipts_were_recorded(response, before, kind):
    """The property: no 500; anything recorded is a payment in range, booked once; nothing else."""
    assert response.status_code in (200, 400, 413), response.content
    receipts, entries = _counts()
    if kind == "validation" or response.status_code != 200:
        assert (receipts, entries) == before
        return
    if receipts == before[0]:  # a replay of an earlier example's TransID: acknowledged, nothing new
        assert entries == before[1]
        return
    assert (receipts, entries) == (before[0] + 1, before[1] + 1)
    receipt = TillReceipt.objects.order_by("-pk").first()
    assert MPESA_CODE.match(receipt.code)
    assert Decimal("0") < receipt.amount < Decimal(str(django_settings.MAX_PAYMENT_AMOUNT))
    assert receipt.amount == receipt.amount.quantize(Decimal("0.01"))
    now = timezone.now()
    window = dt.timedelta(days=django_settings.GATEWAY_TIME_WINDOW_DAYS, minutes=1)
    assert now - window <= receipt.paid_at <= now + dt.timedelta(seconds=django_settings.CLOCK_SKEW_SECONDS)
    entry = JournalEntry.objects.get(receipt_code=receipt.code)
    assert {p.amount for p in entry.postings.all()} == {receipt.amount, -receipt.amount}


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(body=json_values)
def test_random_json_never_500_and_records_nothing(client, kind, body):
    before = _counts()
    response = post(client, kind, json.dumps(body))
    assert response.status_code == 400, response.content
    assert _counts() == before


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(body=st.binary(max_size=300))
def test_random_bytes_never_500_and_record_nothing(client, kind, body):
    before = _counts()
    response = post(client, kind, body)
    assert response.status_code == 400, response.content
    assert _counts() == before


@PROPERTY
@given(
    depth=st.integers(min_value=1, max_value=20_000), opener=st.sampled_from(["[", '{"a":', '{"TransID":'])
)
def test_any_nesting_depth_never_500(client, depth, opener):
    closer = "]" if opener == "[" else "}"
    inner = "1" if opener != "[" else ""
    before = _counts()
    response = post(client, "confirmation", opener * depth + inner + closer * depth)
    assert response.status_code in (400, 413), response.content  # 413 once it is over 64 KB
    assert _counts() == before


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(body=payments)
def test_payment_shaped_bodies_record_only_plausible_receipts(client, kind, body):
    before = _counts()
    response = post(client, kind, json.dumps(body))
    _assert_only_plausible_receipts_were_recorded(response, before, kind)


@PROPERTY
@given(amount=amounts, as_text=st.booleans(), code=mpesa_codes)
def test_every_numeric_edge_of_trans_amount(client, amount, as_text, code):
    """TransAmount as a JSON number or as text: recorded exactly, or refused; never rounded."""
    value = str(amount) if as_text and amount is not None else amount
    before = _counts()
    response = post(client, "confirmation", json.dumps(payment(TransID=code, TransAmount=value)))
    _assert_only_plausible_receipts_were_recorded(response, before, "confirmation")
    if response.status_code == 200 and _counts() != before:
        written = repr(value) if isinstance(value, float) else str(value)
        assert TillReceipt.objects.get(code=code).amount == Decimal(written.strip())


@PROPERTY
@given(
    code=mpesa_codes,
    cents=st.integers(min_value=1, max_value=24_999_999),
    seconds_ago=st.integers(min_value=0, max_value=3 * 86400 - 3600),
)
def test_every_good_payment_is_recorded_once(client, code, cents, seconds_ago):
    """The other half of the property: a well-formed payment in range is always recorded."""
    amount = Decimal(cents) / 100
    body = payment(
        TransID=code, TransAmount=f"{amount:.2f}", TransTime=trans_time(-dt.timedelta(seconds=seconds_ago))
    )
    existed = TillReceipt.objects.filter(code=code).exists()
    response = post(client, "confirmation", body)
    assert response.status_code == 200, response.content
    receipt = TillReceipt.objects.get(code=code)
    assert existed or receipt.amount == amount
    assert JournalEntry.objects.filter(receipt_code=code).count() == 1
    log = CallbackLog.objects.filter(source=CallbackSource.C2B_CONFIRMATION).order_by("-pk").first()
    assert log.outcome == (CallbackOutcome.DUPLICATE if existed else CallbackOutcome.APPLIED)
