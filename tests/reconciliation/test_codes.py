"""reconciliation.parsers.codes: M-Pesa receipt codes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from reconciliation.parsers.codes import (
    embedded_date,
    find_codes,
    is_date_plausible,
    is_lookalike,
    lookalike_key,
    normalise_code,
)

NAIROBI = ZoneInfo("Africa/Nairobi")
PASTED_SMS = (
    "TCG3YADR1X Confirmed. Ksh2,045.00 paid to POWERMART SUPERMARKET. on 16/3/25 at 7:51 PM.New M-PESA "
    "balance is Ksh1,324.13. Transaction cost, Ksh0.00. Amount you can transact within the day is "
    "497,455.00. "
    "Save frequent Tills for quick payment on M-PESA app https://bit.ly/mpesalnk"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SAE3YULR0Y", "SAE3YULR0Y"),
        ("sae3yulr0y", "SAE3YULR0Y"),
        ("SAE3 YULR0Y", "SAE3YULR0Y"),
        ("SAE3-YULR0Y", "SAE3YULR0Y"),
        (" sae3 yulr0y ", "SAE3YULR0Y"),
        ("NCB9FJNAIT", "NCB9FJNAIT"),
        ("CONFIRMED1", "CONFIRMED1"),
        ("RECIPIENTS", None),
        ("0712345678", None),
        ("SAE3YULR0", None),
        ("SAE3YULR0YX", None),
        ("A123456789", None),
        ("SAE3YULR0!", None),
        ("", None),
    ],
)
def test_normalise_code(raw, expected):
    assert normalise_code(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi I have paid 150 for 2GB code SAE3YULR0Y number 0712345678", ["SAE3YULR0Y"]),
        ("sae3yulr0y\n0722 000 111", ["SAE3YULR0Y"]),
        ("Recipient Number: +254 712 345 678\nM-Pesa Code: TCG3YADR1X", ["TCG3YADR1X"]),
        ("code is sae3 yulr0y", ["SAE3YULR0Y"]),
        ("SAE3-YULR0Y", ["SAE3YULR0Y"]),
        ("TCG 3YA DR1X for 0712345678", ["TCG3YADR1X"]),
        ("two payments: SAE3YULR0Y and TCG3YADR1X", ["SAE3YULR0Y", "TCG3YADR1X"]),
        ("SAE3YULR0Y sae3yulr0y SAE3-YULR0Y", ["SAE3YULR0Y"]),
        ("Only my number 0712 345 678", []),
        ("Habari, niko na shida na bundles. Nimetuma pesa lakini sijapata", []),
        ("Hi I have paid 150 for 2GB", []),
        ("FOR 2GB CODE pls", []),
        ("CONFIRMED RECIPIENTS TRANSACTION", []),
        ("paid 1,500 and KSH1500000 total", []),
        ("see https://bit.ly/3xYz9AbCdE or www.example.com/AB12CD34EF", []),
        ("+254712345678 254712345678", []),
        (PASTED_SMS, ["TCG3YADR1X"]),
        (
            "UBB7GI2065 confirmed. Reversal of transaction UBB7G6CRBZ has been successfully reversed",
            ["UBB7GI2065", "UBB7G6CRBZ"],
        ),
        ("", []),
    ],
)
def test_find_codes(text, expected):
    assert find_codes(text) == expected


def test_lookalike_key_merges_slips():
    assert lookalike_key("SAE3YULR0Y") == lookalike_key("SAE3YULROY")
    assert lookalike_key("SAE3YULR0Y") == lookalike_key("5AE3YULR0Y")
    assert lookalike_key("QB1Z0IOS5A") == lookalike_key("Q812OI0S5A")
    assert lookalike_key("SAE3YULR0Y") != lookalike_key("SAE3YULR0X")


def test_is_lookalike():
    assert is_lookalike("SAE3YULR0Y", "SAE3YULROY")
    assert is_lookalike("TCG3YADR1X", "tcg3yadrix")
    assert not is_lookalike("SAE3YULR0Y", "SAE3YULR0Y")
    assert not is_lookalike("SAE3YULR0Y", "sae3-yulr0y")
    assert not is_lookalike("SAE3YULR0Y", "TCG3YADR1X")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("NLJ7RT61SV", dt.date(2019, 12, 19)),
        ("LGR7OWQX0R", dt.date(2017, 7, 27)),
        ("NCB9FJNAIT", dt.date(2019, 3, 11)),
        ("SKQ96C7K7H", dt.date(2024, 11, 26)),
        ("SAE3YULR0Y", dt.date(2024, 1, 14)),
        ("RIPA1B2C3D", dt.date(2023, 9, 25)),  # the "RIP" codes of 25 September 2023
        ("TCG3YADR1X", dt.date(2025, 3, 16)),
        ("UJ2H08M4M3", dt.date(2026, 10, 2)),
        ("VA1ABCDE12", dt.date(2027, 1, 1)),
        ("SMA1BCDEF2", None),  # month M is not A-L
        ("SAW1BCDEF2", None),  # day W is past V=31
        ("SB0ABCDEF2", None),  # day 0
        ("SBU1ABCDEF", None),  # 30 February
        ("nonsense", None),
    ],
)
def test_embedded_date(code, expected):
    assert embedded_date(code) == expected


def test_is_date_plausible():
    when = dt.datetime(2024, 1, 14, 10, 35, tzinfo=NAIROBI)
    assert is_date_plausible("SAE3YULR0Y", when) is True
    assert is_date_plausible("SAE3YULR0Y", when + dt.timedelta(days=2)) is True
    assert is_date_plausible("SAE3YULR0Y", when + dt.timedelta(days=3)) is False
    assert is_date_plausible("SAE3YULR0Y", when + dt.timedelta(days=5), tolerance_days=7) is True
    assert is_date_plausible("SMA1BCDEF2", when) is None


def test_is_date_plausible_uses_nairobi_day():
    # 22:30 UTC on 13 Jan is 01:30 on 14 Jan in Nairobi.
    when = dt.datetime(2024, 1, 13, 22, 30, tzinfo=dt.UTC)
    assert is_date_plausible("SAE3YULR0Y", when, tolerance_days=0) is True
    assert is_date_plausible("SAE3YULR0Y", dt.date(2024, 1, 14), tolerance_days=0) is True
