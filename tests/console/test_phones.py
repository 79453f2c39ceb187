"""console.kernel.phones: normalising, finding and masking Kenyan mobile numbers."""

import pytest

from console.kernel.phones import (
    INVALID_PHONE,
    InvalidPhoneNumber,
    find_kenyan_numbers,
    mask_msisdn,
    normalise_msisdn,
    try_normalise_msisdn,
)


@pytest.mark.parametrize(
    "raw",
    [
        "0712345678",
        "+254712345678",
        "254712345678",
        "712345678",
        "+254 712 345 678",
        "+254 712 345678",
        "0712-345-678",
        "0712 345 678",
        "+254\u2011712\u2011345\u2011678",
        "00254712345678",
        "+254 (0) 712 345 678",
        " 0712345678 ",
    ],
)
def test_normalise_accepts_common_forms(raw):
    assert normalise_msisdn(raw) == "254712345678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0110123456", "254110123456"), ("0100123456", "254100123456"), ("0780429439", "254780429439")],
)
def test_normalise_accepts_01_and_airtel_prefixes(raw, expected):
    assert normalise_msisdn(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "hello",
        "071234567",
        "07123456789",
        "+447123456789",
        "0202222222",
        "0150100200",
        "SAE3YULR0Y",
    ],
)
def test_normalise_rejects_non_kenyan_mobiles(raw):
    with pytest.raises(InvalidPhoneNumber):
        normalise_msisdn(raw)


def test_invalid_phone_is_a_value_error_with_readable_message():
    with pytest.raises(ValueError, match="Kenyan mobile number") as info:
        normalise_msisdn("12345")
    assert str(info.value) == INVALID_PHONE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi I have paid 150 for 2GB code SAE3YULR0Y number 0712345678", ["254712345678"]),
        ("sae3yulr0y\n0722 000 111", ["254722000111"]),
        ("Recipient Number: +254 712 345 678\nM-Pesa Code: TCG3YADR1X", ["254712345678"]),
        ("send to 0712-345-678 and 0110 123 456 please", ["254712345678", "254110123456"]),
        ("my number is 712345678", ["254712345678"]),
        ("call +254\u2011712\u2011345\u2011678 or 0712345678", ["254712345678"]),
        ("Paid 1,500 for 10GB, balance Ksh2,045.00", []),
        ("Habari, bundles za leo ziko?", []),
        ("masked 2547****0111 and 2547******678", []),
        ("code UBB7G6CRBZ sent", []),
        (
            "QAI1S35S7Z Confirmed.on 18/1/22 at 3:57 PMKsh40.00 received from 254721863742 MERCY",
            ["254721863742"],
        ),
    ],
)
def test_find_kenyan_numbers(text, expected):
    assert find_kenyan_numbers(text) == expected


def test_find_kenyan_numbers_keeps_order_and_deduplicates():
    text = "0722000111 then 0712345678 then +254722000111 again"
    assert find_kenyan_numbers(text) == ["254722000111", "254712345678"]


def test_find_kenyan_numbers_handles_empty_text():
    assert find_kenyan_numbers("") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("254712345678", "2547******678"), ("0712 345 678", "2547******678"), ("", ""), (None, "")],
)
def test_mask_msisdn(value, expected):
    assert mask_msisdn(value) == expected


# --- try_normalise_msisdn: what JSON and payment gateways carry --------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (254712345678, "254712345678"),
        (254712345678.0, "254712345678"),
        ("+254712345678", "254712345678"),
        ("0712 345 678", "254712345678"),
        ("2547****678", None),  # masked: the hidden digits are unknown
        ("123456789012345", None),  # not a Kenyan mobile
        (True, None),
        ([254712345678], None),
        (2.5, None),
        (float("nan"), None),
        (None, None),
    ],
)
def test_try_normalise_reads_json_numbers_and_refuses_masked_and_foreign(value, expected):
    assert try_normalise_msisdn(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (254708374149, "254708374149"),
        (254708374149.0, "254708374149"),
        ("+254709099876", "254709099876"),
        ("0709099876", "254709099876"),
        ("254 709 099 876", "254709099876"),
        ("123456789012345", "123456789012345"),  # another country's number, kept as reported
        ("2547****149", None),  # masked by the gateway: no number, never a shorter wrong one
        ("1234567890123456", None),  # more than 15 digits
        ("+", None),
        ("abc", None),
        ("1" * 50, None),
        ("\u0660\u0667\u0660\u0668\u0663\u0667\u0664\u0661\u0664\u0669", None),  # non-ASCII digits
        ("０７０８３７４１４９", None),
        (10**16, None),
        (1e17, None),
        ({"n": 1}, None),
        ("", None),
    ],
)
def test_try_normalise_as_reported_keeps_other_numbers_as_digits(value, expected):
    assert try_normalise_msisdn(value, as_reported=True) == expected
