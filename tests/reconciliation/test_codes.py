"""reconciliation.parsers.codes: M-Pesa receipt codes."""

import datetime as dt
import re
import string
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reconciliation.parsers import codes
from reconciliation.parsers.codes import (
    CODE_LENGTH,
    JOIN_DAYS_BEFORE,
    WORD_PARTS,
    embedded_date,
    find_codes,
    is_date_plausible,
    is_lookalike,
    join_across_messages,
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


@pytest.mark.parametrize(
    ("text", "when", "expected"),
    [
        ("code is sae3 yulr0y", dt.date(2024, 1, 14), ["SAE3YULR0Y"]),
        ("SAE3-YULR0Y", dt.date(2024, 1, 15), ["SAE3YULR0Y"]),
        ("TCG 3YA DR1X for 0712345678", dt.date(2025, 3, 17), ["TCG3YADR1X"]),
        # The same pieces long after the code's date: too stale to be joined.
        ("code is sae3 yulr0y", dt.date(2024, 6, 1), []),
        ("TCG 3YA DR1X for 0712345678", dt.date(2026, 12, 1), []),
    ],
)
def test_find_codes_in_pieces_near_their_date(text, when, expected):
    assert find_codes(text, when=when) == expected


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


# --- Codes in pieces -------------------------------------------------------------------------
# The messages below are dated 1 Dec 2026, 10:15 Nairobi; their codes were paid a few days before
# (UKO = 24 Nov, UKQ = 26 Nov, UKR = 27 Nov, UL1 = 1 Dec 2026).
SENT = dt.datetime(2026, 12, 1, 10, 15, tzinfo=NAIROBI)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an all-digit tail
        ("UKO 774 0317", ["UKO7740317"]),
        # Lower case too, when the letters are just the three-letter date prefix and the digits
        # are grouped: "uko 774 0317", "ujt-269-3687".
        ("uko 774 0317", ["UKO7740317"]),
        ("ujt-269-3687", []),  # its date (29 Oct 2026) is not recent for the message: not read
        ("UKO7 740317", ["UKO7740317"]),
        ("UKO-774-0317", ["UKO7740317"]),
        ("UKO7740317", ["UKO7740317"]),
        ("UK O77 40 317", ["UKO7740317"]),
        # letters, digits, letters; lower case too
        ("UKR-994-ENSZ", ["UKR994ENSZ"]),
        ("UKR 994 ENSZ", ["UKR994ENSZ"]),
        ("uko 120 pjlm", ["UKO120PJLM"]),
        ("ukr-994-ensz", ["UKR994ENSZ"]),
        ("Nimelipa 150 for 2GB. Code: UKR 994 ENSZ, load 0712 345 678", ["UKR994ENSZ"]),
        # two to ten pieces
        ("UKR8 X8UGJW", ["UKR8X8UGJW"]),
        ("UKR 8X8 UGJW", ["UKR8X8UGJW"]),
        ("UK R8 X8 UG JW", ["UKR8X8UGJW"]),
        ("U K R 9 9 4 E N S Z", ["UKR994ENSZ"]),
        ("u k r 9 9 4 e n s z", ["UKR994ENSZ"]),
        # separators: spaces, dashes of every kind, line breaks, one dash per gap
        ("UKR  994  ENSZ", ["UKR994ENSZ"]),
        ("UKR - 994 - ENSZ", ["UKR994ENSZ"]),
        ("UKR\u2011994\u2011ENSZ", ["UKR994ENSZ"]),
        ("UKR \u2013 994 \u2014 ENSZ", ["UKR994ENSZ"]),
        ("UKR\u00a0994\u202fENSZ", ["UKR994ENSZ"]),
        ("UKR\t994\tENSZ", ["UKR994ENSZ"]),
        ("Mpesa code: UKQHK2\n6JKX", ["UKQHK26JKX"]),
        ("Mpesa code: UKQHK2 \n 6JKX\nThanks", ["UKQHK26JKX"]),
        ("UKQHK2\r\n6JKX", ["UKQHK26JKX"]),
        ("UKR-\n994-\nENSZ", ["UKR994ENSZ"]),
        ("UKR\n994\nENSZ", ["UKR994ENSZ"]),
        # stop at ten characters: what follows is not part of the code
        ("UKO 774 0317 0712345678", ["UKO7740317"]),
        ("UKO 774 0317 0712 345 678", ["UKO7740317"]),
        ("UKR 994 ENSZ load 2GB", ["UKR994ENSZ"]),
        ("(UKR 994 ENSZ)", ["UKR994ENSZ"]),
        ("code:UKR 994 ENSZ.", ["UKR994ENSZ"]),
        # pieces and whole codes together, each once
        ("UKR 994 ENSZ and UKR8X8UGJW", ["UKR994ENSZ", "UKR8X8UGJW"]),
        ("UKR 994 ENSZ\nUKR994ENSZ", ["UKR994ENSZ"]),
        ("UCA6KP2R8T and UKO 774 0317", ["UCA6KP2R8T", "UKO7740317"]),
    ],
)
def test_find_codes_reads_every_grouping(text, expected):
    assert find_codes(text, when=SENT) == expected


@pytest.mark.parametrize(
    "text",
    [
        # phone numbers, every Kenyan form and grouping, also after a date-prefix-like word
        "0712 345 678",
        "0712-345-678",
        "0712345678",
        "07 12 34 56 78",
        "0112 345 678",
        "+254 712 345 678",
        "+254712345678",
        "254 712 345 678",
        "254712345678",
        "00254 712 345678",
        "712 345 678",
        "uko 0712 345 678",
        "UKO 0712 345 678",
        "UK 0712 345 678",
        "ul +254 712 345 678",
        "UL 254 712 345 678",
        # amounts
        "Ksh 1,500.00",
        "KES 1,500",
        "1500/=",
        "Ksh1500",
        "UKO 1,500.00",
        "uko 150/=",
        "uko na 15 bob",
        "UKO NA 15 BOB",
        # dates and times
        "12/03/2026",
        "12-03-2026",
        "uk 12-03-2026",
        "UL 01.12.2026",
        "ul 1 12 2026",
        "2026-12-01",
        "10:15",
        "ul 10:15 am",
        "UL1 10:15",
        # till numbers
        "till 6944804",
        "TILL 694480",
        "till 123456",
        "Till no. 6944804",
        "buy goods 6944804",
        "uko 6944804",
        "UKO 6944804",
        "UKO 7740317",
        # words and bundles
        "paid to",
        "for my",
        "confirmed ksh",
        "thanks 1500",
        "2GB",
        "24hrs",
        "1.5GB",
        "ule 1 2gb 24hrs",
        "UKO 1.5GB",
        "sorry I paid 150 for 2GB at 10am",
        "uko 150 sorry",
        "Hi I have paid 150 for 2GB code pls check, number 0712 345 678, at 10:15 on 12/03/2026",
        # mixed letter case across or inside pieces
        "Ukr 994 ensz",
        "UKR 994 ensz",
        "uKR 994 ENSZ",
        # separators that are not read
        "UKR.994.ENSZ",
        "UKR/994/ENSZ",
        "UKR_994_ENSZ",
        "UKR,994,ENSZ",
        "UKR\n\n994 ENSZ",
        "UKR    994 ENSZ",
        "UKR--994 ENSZ",
        # pieces glued to more digits: not a whole code
        "UKO 774 0317.5",
        "UKR 994 ENSZ/2",
        "+UKR 994 ENSZ",
        # nine or eleven characters
        "UKR 994 ENS",
        "UKR 994 ENSZX",
        # two different codes from overlapping pieces: read neither
        "UL1 UK1 2345 ABC",
    ],
)
def test_find_codes_never_joins_numbers_or_words(text):
    assert find_codes(text, when=SENT) == []


def test_pieces_need_a_recent_date_but_whole_codes_do_not():
    # UKR = 27 Nov 2026: joined from 27 Nov to 28 Dec 2026 only.
    assert find_codes("UKR 994 ENSZ", when=dt.date(2026, 12, 28)) == ["UKR994ENSZ"]
    assert find_codes("UKR 994 ENSZ", when=dt.date(2026, 12, 29)) == []
    assert find_codes("UKR 994 ENSZ", when=dt.date(2026, 11, 26)) == ["UKR994ENSZ"]  # a clock a day off
    assert find_codes("UKR 994 ENSZ", when=dt.date(2026, 11, 25)) == []  # paid after the message?
    # Undecodable dates are never joined: month M, day W, 30 February.
    assert find_codes("UMA 994 ENSZ", when=SENT) == []
    assert find_codes("UKW 994 ENSZ", when=SENT) == []
    assert find_codes("UBU 994 ENSZ", when=dt.date(2026, 3, 1)) == []
    # A whole upper-case code is read whatever its date; a whole letters-then-digits one only
    # with a recent date (KSH1500000, ACC1234567 are money and accounts).
    assert find_codes("UKR994ENSZ", when=dt.date(2030, 1, 1)) == ["UKR994ENSZ"]
    assert find_codes("UKO7740317", when=dt.date(2030, 1, 1)) == []
    assert find_codes("ACC1234567 KSH1500000", when=SENT) == []


def test_pieces_date_is_compared_on_the_nairobi_day():
    # 21:30 UTC on 30 Nov is 00:30 on 1 Dec in Nairobi: a UL1 code (1 Dec) is not in the future.
    assert find_codes("UL1 ABC 2345", when=dt.datetime(2026, 11, 30, 21, 30, tzinfo=dt.UTC)) == ["UL1ABC2345"]
    # 20:00 UTC on 29 Nov is 23:00 on 29 Nov in Nairobi: a 1 Dec code would be two days ahead.
    assert find_codes("UL1 ABC 2345", when=dt.datetime(2026, 11, 29, 20, 0, tzinfo=dt.UTC)) == []
    assert find_codes("UL1 ABC 2345", when=dt.datetime(2026, 12, 1, 9, 0)) == ["UL1ABC2345"]  # naive: local


def code_on(day: dt.date, rest: str) -> str:
    """A code paid on ``day``: its year, month and day letters, then ``rest`` (7 chars)."""
    day_char = str(day.day) if day.day < 10 else chr(ord("A") + day.day - 10)
    return chr(ord("L") + day.year - 2017) + chr(ord("A") + day.month - 1) + day_char + rest


def test_code_on_matches_embedded_date():
    assert code_on(dt.date(2026, 11, 27), "994ENSZ") == "UKR994ENSZ"
    assert embedded_date(code_on(dt.date(2026, 12, 1), "ABC2345")) == dt.date(2026, 12, 1)


def test_pieces_without_a_date_are_read_against_today():
    code = code_on(dt.datetime.now(NAIROBI).date() - dt.timedelta(days=1), "994ENSZ")
    grouped = f"{code[:3]} {code[3:6]} {code[6:]}"
    assert find_codes(f"paid {grouped} thanks") == [code]


# --- A code over two messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("Mpesa code UKQHK2", "6JKX", "UKQHK26JKX"),
        ("paid UKR 994", "ENSZ load 0712345678", "UKR994ENSZ"),
        ("paid UKR 994 ", "\nENSZ", "UKR994ENSZ"),
        ("code\nUKR-994-", "ENSZ", "UKR994ENSZ"),
        ("uko 120", "pjlm", "UKO120PJLM"),
        ("UKO", "774 0317 for 0712 345 678", "UKO7740317"),
        ("U K R 9 9", "4 E N S Z", "UKR994ENSZ"),
        ("Mpesa code UKQHK2", "- 6JKX", "UKQHK26JKX"),  # one dash may stand between them
        # either message already holds a code
        ("paid 150", "UKR8X8UGJW", None),
        ("UKR8X8UGJW", "6JKX", None),
        ("UKR 994 ENSZ", "thanks", None),
        ("Mpesa code UKQHK2", "6JKX and UKR994ENSZ", None),
        # the pieces do not end the first message or start the second
        ("Mpesa code UKQHK2.", "6JKX", None),
        ("Mpesa code UKQHK2 thanks", "6JKX", None),
        ("Mpesa code UKQHK2", "here: 6JKX", None),
        ("UKR-994-", "-ENSZ", None),
        ("UKR 994:", "ENSZ", None),
        # two different codes could be made: neither
        ("UL1 UK1", "2345 ABC", None),
        # numbers and words, never a code
        ("uko", "0712 345 678", None),
        ("UKO", "0712 345 678", None),
        ("UKO 0712", "345 678", None),  # a phone number split over the two messages
        ("paid UKO 0712 345", "678", None),
        ("till", "123456", None),
        ("uko", "6944804", None),
        ("uko na", "15 bob", None),
        ("sorry I paid 150", "for 2GB at 10am", None),
        ("ul", "12-03-2026", None),
        ("ukr 994", "ENSZ", None),
        ("UKR 994", "ENS", None),
        ("UKR 994", "ENSZX", None),
        ("", "", None),
        ("UKQHK2", "", None),
    ],
)
def test_join_across_messages(first, second, expected):
    assert join_across_messages(first, second, when=SENT) == expected


def test_join_across_messages_needs_a_recent_date():
    assert join_across_messages("paid UKR 994", "ENSZ", when=dt.date(2026, 12, 28)) == "UKR994ENSZ"
    assert join_across_messages("paid UKR 994", "ENSZ", when=dt.date(2026, 12, 29)) is None
    assert join_across_messages("paid UKR 994", "ENSZ", when=dt.date(2026, 11, 25)) is None


# --- Properties ------------------------------------------------------------------------------
# Pieces a code is cut into and what stands between them; the messages the properties use are
# written any day from 2025 to 2027.
SEPARATORS = [" ", "-", "\n", " - ", "  "]
ALNUM = string.ascii_uppercase + string.digits
message_days = st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 12, 31))


@st.composite
def grouped_codes(draw):
    """(message day, code paid up to JOIN_DAYS_BEFORE days before it, its pieces as written)."""
    when = draw(message_days)
    paid = when - dt.timedelta(days=draw(st.integers(0, JOIN_DAYS_BEFORE)))
    rest = draw(st.text(ALNUM, min_size=7, max_size=7))
    code = code_on(paid, rest)
    assume(normalise_code(code) == code)
    cuts = sorted(draw(st.sets(st.integers(1, CODE_LENGTH - 1), max_size=5)))
    bounds = [0, *cuts, CODE_LENGTH]
    pieces = [code[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    if draw(st.booleans()):
        pieces = [p.lower() for p in pieces]
    return when, code, pieces


def refused_grouping(code: str, pieces: list[str]) -> bool:
    """The groupings find_codes chooses not to read (codes.py, _joined_code): a piece that is a
    word or a unit; pieces of letters then pieces of digits (a word and a number) unless in upper
    case with at most three letters and two or more digit pieces (lower case only when the
    letters are one 3-letter piece: the date prefix). (Pieces that spell a date are
    checked by the caller.)"""
    if len(pieces) == 1:
        return False
    for n, piece in enumerate(pieces):
        lower = piece.lower()
        if codes._UNIT_PART_RE.fullmatch(lower) or (lower in WORD_PARTS and (n > 0 or len(piece) > 3)):
            return True
    kinds = "".join("a" if p.isalpha() else "d" if p.isdigit() else "m" for p in pieces)
    if re.fullmatch(r"a+d+", kinds):  # a word, then a number
        letters = sum(ch.isalpha() for ch in code)
        lower_ok = len(pieces[0]) == 3  # in lower case only a 3-letter date prefix, then digits
        if letters > 3 or kinds.count("d") < 2 or (any(p.islower() for p in pieces) and not lower_ok):
            return True
    return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_codes(), st.data())
def test_property_every_grouping_of_a_recent_code_is_read(case, data):
    when, code, pieces = case
    grouped = pieces[0]
    for piece in pieces[1:]:
        grouped += data.draw(st.sampled_from(SEPARATORS)) + piece
    found = find_codes(f"paid {grouped} thanks", when=when)
    if refused_grouping(code, pieces) or codes._DATE_RE.search(grouped):
        assert found == []  # missed, never wrong
    else:
        assert found == [code]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_codes(), st.data())
def test_property_a_code_over_two_messages_is_read(case, data):
    when, code, pieces = case
    assume(len(pieces) >= 2)
    cut = data.draw(st.integers(1, len(pieces) - 1))
    sep = data.draw(st.sampled_from(SEPARATORS))
    first = "paid " + sep.join(pieces[:cut])
    second = sep.join(pieces[cut:]) + " thanks"
    joined = join_across_messages(first, second, when=when)
    assert joined in (code, None)
    if not refused_grouping(code, pieces) and not codes._DATE_RE.search(first + " " + second):
        assert joined == code


def _grouped_digits(digits: str, draw) -> str:
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=3)))
    bounds = [0, *cuts, len(digits)]
    sep = draw(st.sampled_from([" ", "-", "\u2011"]))
    return sep.join(digits[a:b] for a, b in zip(bounds, bounds[1:], strict=False))


@st.composite
def kenyan_phones(draw):
    subscriber = draw(st.sampled_from("17")) + draw(st.text(string.digits, min_size=8, max_size=8))
    form = draw(st.sampled_from(["0", "254", "+254", "+254 ", "254 ", "00254", ""]))
    if form == "":  # the bare nine digits: one run or 3-3-3
        return draw(st.sampled_from([subscriber, f"{subscriber[:3]} {subscriber[3:6]} {subscriber[6:]}"]))
    if form == "0":
        return _grouped_digits("0" + subscriber, draw)
    return form + _grouped_digits(subscriber, draw)


@st.composite
def amounts(draw):
    value = draw(st.integers(10, 250_000))
    shown = draw(st.sampled_from([f"{value:,}", str(value), f"{value:,}.00", f"{value}.00"]))
    written = draw(st.sampled_from(["Ksh {}", "Ksh{}", "KES {}", "{}/=", "{} bob", "sh. {}", "{}"]))
    return written.format(shown)


@st.composite
def dates_and_times(draw):
    day = draw(message_days)
    hour, minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    return draw(
        st.sampled_from(
            [
                f"{day.day}/{day.month}/{day.year}",
                f"{day.day:02d}-{day.month:02d}-{day.year}",
                f"{day.day:02d}.{day.month:02d}.{day.year}",
                f"{day:%d/%m/%y}",
                day.isoformat(),
                f"{hour}:{minute:02d}",
                f"{hour % 12 or 12}{'am' if hour < 12 else 'pm'}",
                f"{hour % 12 or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}",
            ]
        )
    )


tills = st.integers(10_000, 9_999_999).map(str)
bundles = st.sampled_from(["2GB", "1.5GB", "24hrs", "1GB 24hrs", "500MB", "7 days", "10am", "sms 200"])
FILLER_WORDS = (
    "sorry I paid for my to at on code confirmed ksh till number the thanks tafadhali uko ule "
    "nimelipa na kwa pls load bundle please sijapata Mpesa Till No. Hi,"
)
fillers = st.sampled_from(FILLER_WORDS.split())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(kenyan_phones(), amounts(), dates_and_times(), tills, bundles, fillers), max_size=12),
    st.lists(st.sampled_from([" ", "  ", "\n", " - ", ", "]), min_size=12, max_size=12),
    message_days,
)
def test_property_numbers_and_words_are_never_codes(items, seps, when):
    text = "".join(item + sep for item, sep in zip(items, seps, strict=False))
    assert find_codes(text, when=when) == []
    assert find_codes(text.upper(), when=when) == []


@settings(max_examples=500, deadline=None)
@given(st.text(), st.one_of(st.none(), message_days))
def test_property_find_codes_never_raises(text, when):
    found = find_codes(text, when=when)
    assert all(normalise_code(code) == code for code in found)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALNUM + string.ascii_lowercase + " -\n\u2011.,:/+", max_size=60), message_days)
def test_property_codes_found_are_codes(text, when):
    for code in find_codes(text, when=when):
        assert normalise_code(code) == code
        assert embedded_date(code) is not None or code in text


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.one_of(st.none(), message_days))
def test_property_join_across_messages_never_raises(first, second, when):
    joined = join_across_messages(first, second, when=when)
    assert joined is None or normalise_code(joined) == joined


def test_a_code_without_a_digit_is_read_in_capitals_with_a_recent_date_only():
    when = dt.date(2026, 10, 30)
    assert find_codes("tuma 2 GB kwa 0111 698 685 UJTZVLKAYR", when=when) == ["UJTZVLKAYR"]
    assert find_codes("ujtzvlkayr", when=when) == []  # lower case: could be any word
    assert find_codes("UJTZVLKAYR", when=dt.date(2026, 3, 1)) == []  # not a recent payment's date
    assert find_codes("THANKSALOT and WHATSAPPED", when=when) == []


def test_a_piece_like_64h_is_part_of_a_code_not_an_hour():
    assert find_codes("Nimelipa monthly 25GB 👉 UJV-64H-28-E4", when=dt.date(2026, 10, 31)) == ["UJV64H28E4"]
    assert find_codes("bundle ya 24h", when=dt.date(2026, 10, 31)) == []
