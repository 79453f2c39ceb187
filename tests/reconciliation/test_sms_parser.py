"""reconciliation.parsers.sms: M-Pesa SMS texts (formats doc §3)."""

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reconciliation.parsers.sms import ParsedSms, find_sms_in_text, parse_mpesa_sms

NAIROBI = ZoneInfo("Africa/Nairobi")
SAMPLES = (Path(__file__).parent.parent / "data" / "sms" / "samples.txt").read_text(encoding="utf-8")
SAMPLE_LINES = [line for line in SAMPLES.splitlines() if line.strip()]


def at(*args):
    return dt.datetime(*args, tzinfo=NAIROBI)


# (code, kind, amount, counterparty, phone, account, occurred_at, balance) per line of samples.txt
EXPECTED = [
    (
        "TCG3YADR1X",
        "till_payment",
        "2045.00",
        "POWERMART SUPERMARKET",
        None,
        None,
        at(2025, 3, 16, 19, 51),
        "1324.13",
    ),
    (
        "RKS4M5N6IK",
        "till_payment",
        "100.00",
        "WYCLIFF MONARI",
        None,
        None,
        at(2023, 11, 28, 18, 30),
        "5381.73",
    ),
    (
        "SJ71B959XT",
        "till_payment",
        "100.00",
        "STANLEY MATHENGE WAIRIMU",
        None,
        None,
        at(2024, 10, 7, 23, 3),
        "22898.87",
    ),
    (
        "UBG6U6NN6A",
        "paybill_payment",
        "50.00",
        "SAFARICOM POSTPAID BUNDLES",
        None,
        "EasyTalk",
        at(2026, 2, 16, 9, 18),
        "370.44",
    ),
    (
        "UBB7G6CRBZ",
        "paybill_payment",
        "10.00",
        "Daraja-Sandbox",
        None,
        "Order-ORD-00000387",
        at(2026, 2, 11, 16, 12),
        "0.37",
    ),
    (
        "QC352PDIVL",
        "send_money",
        "1000.00",
        "SOPHIA MWENI",
        "254702972812",
        None,
        at(2022, 3, 3, 17, 28),
        "25203.19",
    ),
    ("SJ91IFDAQJ", "received", "25000.00", "CO-OP BANK 149444", None, None, at(2024, 10, 9, 18, 57), "4"),
    ("UBB7GI2065", "reversal", "10.00", "UBB7G6CRBZ", None, None, at(2026, 2, 11, 17, 0), "10.37"),
    ("TJK4AB12EA", "fuliza", "463.00", "Fuliza M-PESA", None, None, None, None),
    (
        "QAI1S35S7Z",
        "till_received",
        "40.00",
        "MERCY MUGOIRI WAITHAKA",
        "254721863742",
        None,
        at(2022, 1, 18, 15, 57),
        "440.00",
    ),
    (
        "QAI9S2XEPH",
        "till_received",
        "200.00",
        "james kamau",
        "254797847747",
        None,
        at(2022, 1, 18, 15, 54),
        "400.00",
    ),
    (
        "RAQ788BUHD",
        "till_received",
        "45200.00",
        "488519-NCBA Bank M- pesa",
        "254780429439",
        None,
        at(2023, 1, 26, 12, 47),
        "45087.00",
    ),
]


def expected_sms(code, kind, amount, counterparty, phone, account, occurred_at, balance):
    return ParsedSms(
        code=code,
        kind=kind,
        amount=Decimal(amount),
        counterparty=counterparty,
        phone=phone,
        account=account,
        occurred_at=occurred_at,
        balance=Decimal(balance) if balance is not None else None,
    )


@pytest.mark.parametrize(("line", "expected"), list(zip(SAMPLE_LINES, EXPECTED, strict=True)))
def test_documented_samples(line, expected):
    assert parse_mpesa_sms(line) == expected_sms(*expected)


def test_amounts_are_decimals_and_dates_aware():
    parsed = parse_mpesa_sms(SAMPLE_LINES[0])
    assert isinstance(parsed.amount, Decimal)
    assert parsed.occurred_at.tzinfo is not None
    assert parsed.occurred_at.utcoffset() == dt.timedelta(hours=3)


def test_till_received_2026_upper_case_multiline():
    text = (
        "UJ2H08M4M3 Confirmed.on 2/10/26 at 7:37 PMKSH40.00 received from 254700000001 Jane Doe.\n"
        "New Account balance is KSH1,090.05. Transaction cost, KSH0.00. ..."
    )
    assert parse_mpesa_sms(text) == expected_sms(
        "UJ2H08M4M3",
        "till_received",
        "40.00",
        "Jane Doe",
        "254700000001",
        None,
        at(2026, 10, 2, 19, 37),
        "1090.05",
    )


@pytest.mark.parametrize(
    ("text", "phone", "name"),
    [
        (
            "UJ2H08M4M3 Confirmed.on 2/10/26 at 7:37 PMKsh40.00 received from 2547******001 JANE  DOE. "
            "New Account balance is Ksh1,090.05.",
            "2547******001",
            "JANE DOE",
        ),
        (
            "UJ2H08M4M3 Confirmed. on 2/10/26 at 7:37 AM Ksh1,500.00 received from 254712***678 Otieno. "
            "New Account balance is Ksh1,090.05.",
            "254712***678",
            "Otieno",
        ),
    ],
)
def test_till_received_masked_phone(text, phone, name):
    parsed = parse_mpesa_sms(text)
    assert parsed.kind == "till_received"
    assert parsed.phone == phone
    assert parsed.counterparty == name


def test_till_received_amount_first_variant():
    text = "SAE3YULR0Y Confirmed. Ksh150.00 received from 254712345678 MARY WANJIKU on 14/1/24 at 10:35 AM."
    parsed = parse_mpesa_sms(text)
    assert (parsed.kind, parsed.amount, parsed.phone, parsed.counterparty) == (
        "till_received",
        Decimal("150.00"),
        "254712345678",
        "MARY WANJIKU",
    )
    assert parsed.occurred_at == at(2024, 1, 14, 10, 35)


def test_irregular_spacing_and_ksh_with_space():
    text = (
        "SAE3YULR0Y  Confirmed.Ksh 1,463.00 paid to  MAMA MBOGA  SHOP.on 14/1/24 at 12:05 AM."
        "New M-PESA balance is Ksh 20.00."
    )
    parsed = parse_mpesa_sms(text)
    assert parsed.kind == "till_payment"
    assert parsed.amount == Decimal("1463.00")
    assert parsed.counterparty == "MAMA MBOGA SHOP"
    assert parsed.occurred_at == at(2024, 1, 14, 0, 5)
    assert parsed.balance == Decimal("20.00")


def test_twelve_pm_and_two_digit_day_month():
    text = (
        "SLC4ABCDE1 Confirmed. Ksh45.00 paid to TILLBOOK DATA. on 12/12/24 at 12:30 PM."
        "New M-PESA balance is Ksh5.00."
    )
    assert parse_mpesa_sms(text).occurred_at == at(2024, 12, 12, 12, 30)


def test_lower_case_code_is_normalised():
    text = (
        "sae3yulr0y Confirmed. Ksh150.00 paid to TILLBOOK. on 14/1/24 at 10:35 AM."
        "New M-PESA balance is Ksh5.00."
    )
    assert parse_mpesa_sms(text).code == "SAE3YULR0Y"


def test_send_money_to_name_without_phone():
    text = (
        "SAE3YULR0Y Confirmed. Ksh200.00 sent to JOHN  DOE on 14/1/24 at 1:05 PM."
        " New M-PESA balance is Ksh5.00."
    )
    parsed = parse_mpesa_sms(text)
    assert (parsed.kind, parsed.counterparty, parsed.phone) == ("send_money", "JOHN DOE", None)


def test_received_from_person_extracts_phone():
    text = (
        "SAE3YULR0Y Confirmed.You have received Ksh500.00 from JANE WANJIRU 0712345678 on 14/1/24 at 1:05 PM "
        "New M-PESA balance is Ksh505.00."
    )
    parsed = parse_mpesa_sms(text)
    assert (parsed.kind, parsed.counterparty, parsed.phone) == ("received", "JANE WANJIRU", "254712345678")


@pytest.mark.parametrize(
    "text",
    ["", "hello", "SAE3YULR0Y", "Confirmed. Ksh100.00 paid to X. on 1/1/24 at 1:00 PM", "I paid 150 for 2GB"],
)
def test_non_sms_returns_none(text):
    assert parse_mpesa_sms(text) is None


def test_find_sms_in_whatsapp_message_with_recipient():
    text = "Hello\n" + SAMPLE_LINES[0] + "\nrecipient 0712 345 678\nThanks"
    found = find_sms_in_text(text)
    assert [sms.code for sms in found] == ["TCG3YADR1X"]
    assert found[0].amount == Decimal("2045.00")


def test_find_sms_in_text_several_and_same_code_kinds():
    fuliza = SAMPLE_LINES[8]
    purchase = (
        "TJK4AB12EA Confirmed. Ksh463.00 paid to TILLBOOK DATA. on 20/10/25 at 8:00 AM."
        "New M-PESA balance is Ksh0.00."
    )
    found = find_sms_in_text(f"{purchase}\n\n{fuliza}\n{SAMPLE_LINES[9]}")
    assert [(s.code, s.kind) for s in found] == [
        ("TJK4AB12EA", "till_payment"),
        ("TJK4AB12EA", "fuliza"),
        ("QAI1S35S7Z", "till_received"),
    ]


def test_parse_mpesa_sms_finds_sms_after_leading_text():
    assert parse_mpesa_sms("Forwarded: " + SAMPLE_LINES[3]).code == "UBG6U6NN6A"


def test_find_sms_in_text_none():
    assert find_sms_in_text("Hi I have paid 150 for 2GB code SAE3YULR0Y number 0712345678") == []
