"""Hostile bodies on POST /api/stk-push/: always a clear 4xx {"error", "field"}, never a 500,
and never an order unless the request names a real phone and a bundle on sale."""

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ledger import api
from ledger.models import Order
from tests.ledger.factories import BundleFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]
URL = "/api/stk-push/"
PROPERTY = hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def bundle(db):
    return BundleFactory(slug="daily-2gb", price=Decimal("150"))


def post(client, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    elif not isinstance(data, bytes):
        data = json.dumps(data)
    return client.post(URL, data=data, content_type="application/json")


def a_request_with(field: str, raw_json_value: str) -> str:
    body = json.dumps({"phone_number": "0712345678", "bundle": "daily-2gb"} | {field: "__VALUE__"})
    return body.replace('"__VALUE__"', raw_json_value)


def assert_refused(response, status: int, field: str | None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "field"} and body["error"] and body["field"] == field
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"phone_number": "0712345678", "bundle": "\xff"}', None),
        (json.dumps({"phone_number": "0712345678", "bundle": "daily-2gb"}).encode("utf-16"), None),
        (b"\x00\x01\x02", None),
        ("", None),
        ("null", None),
        ("[]", None),
        ("1", None),
        ('"0712345678"', None),
        ("true", None),
        (a_request_with("bundle", "NaN"), None),
        (a_request_with("phone_number", "Infinity"), None),
        (a_request_with("phone_number", "9" * 5000), None),
        (a_request_with("phone_number", '"0712\\u0000345678"'), "phone_number"),
        (a_request_with("phone_number", "-712345678"), "phone_number"),
        (a_request_with("phone_number", "712345678.0"), "phone_number"),
        (a_request_with("phone_number", "1e400"), "phone_number"),
        (a_request_with("phone_number", "1" + "0" * 40), "phone_number"),
        (a_request_with("phone_number", "true"), "phone_number"),
        (a_request_with("phone_number", '{"a": "0712345678"}'), "phone_number"),
        (a_request_with("phone_number", '"' + "7" * 10_000 + '"'), "phone_number"),
        (a_request_with("phone_number", '"\\ud800"'), "phone_number"),
        (a_request_with("recipient_phone", "-1"), "recipient_phone"),
        (a_request_with("recipient_phone", "1.5"), "recipient_phone"),
        (a_request_with("recipient_phone", '"0712\\u0000345678"'), "recipient_phone"),
        (a_request_with("bundle", "1.5"), "bundle"),
        (a_request_with("bundle", "true"), "bundle"),
        (a_request_with("bundle", '{"slug": "daily-2gb"}'), "bundle"),
    ],
)
def test_hostile_body_is_a_clear_400(client, bundle, body, field):
    assert_refused(post(client, body), 400, field)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,
        '{"a":' * 2500 + "1" + "}" * 2500,
        a_request_with("bundle", "[" * 5000 + "]" * 5000),
    ],
)
def test_deep_json_is_a_400_saying_so(client, bundle, body):
    response = post(client, body)
    assert_refused(response, 400, None)
    assert response.json()["error"] == api.TOO_DEEP


def test_ten_thousand_deep_json_is_refused_by_its_size(client, bundle):
    assert_refused(post(client, "[" * 10_000 + "]" * 10_000), 413, None)


@pytest.mark.parametrize(
    "value",
    [
        '"daily\\u00002gb"',  # PostgreSQL cannot compare text with NUL: used to be a 500
        '"\\u00b2"',  # a digit to str.isdigit, not to int()
        '"\\uff11\\uff12"',  # full-width 12
        '"' + "9" * 40 + '"',
        "1" + "0" * 30,
        "-1",
        "0",
        '"' + "x" * 1000 + '"',
        '"daily 2gb; drop table"',
        '"\\ud800"',
    ],
)
def test_a_bundle_that_cannot_exist_is_404(client, bundle, value):
    assert_refused(post(client, a_request_with("bundle", value)), 404, "bundle")


@pytest.mark.parametrize("size", [api.STK_PUSH_MAX_BODY_BYTES + 1, 10 * 1024 * 1024])
def test_a_huge_body_is_413(client, bundle, size):
    body = json.dumps({"phone_number": "0712345678", "bundle": "daily-2gb", "pad": "x" * size})
    assert_refused(post(client, body), 413, None)


def test_an_unquoted_phone_number_still_works(client, bundle):
    response = post(client, {"phone_number": 254712345678, "bundle": "daily-2gb"})
    assert response.status_code == 201
    assert Order.objects.get().payer_msisdn == "254712345678"


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
phones = (
    st.sampled_from(["0712345678", "+254 712 345 678", "254110123456", "0201234567", "12345", " "])
    | st.integers()
    | st.text(max_size=20)
    | json_values
)
bundle_keys = (
    st.sampled_from(["daily-2gb", "", "no-such"]) | st.integers() | st.text(max_size=12) | json_values
)
requests = st.fixed_dictionaries(
    {"phone_number": phones, "bundle": bundle_keys},
    optional={"recipient_phone": phones, "amount": json_values},
)
ANSWERS = {200, 201, 400, 404, 413, 429}


def _assert_answered(response, orders_before):
    assert response.status_code in ANSWERS, response.content
    body = response.json()
    if response.status_code >= 400:
        assert {"error", "field"} <= set(body) and body["error"]
        assert Order.objects.count() == orders_before
    else:
        assert Order.objects.filter(reference=body["reference"], bundle__slug="daily-2gb").exists()


@PROPERTY
@given(body=json_values)
def test_random_json_is_never_a_500(client, bundle, body):
    before = Order.objects.count()
    _assert_answered(post(client, json.dumps(body)), before)


@PROPERTY
@given(body=st.binary(max_size=300))
def test_random_bytes_are_never_a_500(client, bundle, body):
    before = Order.objects.count()
    _assert_answered(post(client, body), before)


@PROPERTY
@given(depth=st.integers(min_value=1, max_value=20_000))
def test_any_nesting_depth_is_never_a_500(client, bundle, depth):
    _assert_answered(post(client, '{"bundle":' * depth + "1" + "}" * depth), 0)


@PROPERTY
@given(body=requests)
def test_request_shaped_bodies_are_never_a_500(client, bundle, body):
    before = Order.objects.count()
    _assert_answered(post(client, json.dumps(body)), before)
