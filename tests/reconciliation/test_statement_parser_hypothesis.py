"""The statement parser under generated input: amounts read by the fast path as by the full
steps, and a streamed parse that is the same parse."""

import re
from decimal import Decimal, InvalidOperation

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation.parsers import parse_statement, statement_rows_stream
from reconciliation.parsers.statement import BAD_AMOUNT, _text, parse_amount

HEAD = "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance\n"


def reference_amount(value: str) -> Decimal:
    """parse_amount's steps for text, as written before its fast path."""
    if not value.strip():
        return Decimal("0.00")
    text = re.sub(r"^(?:KSH|KES|SH)\.?\s*", "", value.strip().replace("\u00a0", ""), flags=re.I)
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()").replace(",", "").replace(" ", "")
    if not re.fullmatch(r"[-+]?[0-9]+(?:\.[0-9]+)?", text):
        raise ValueError(BAD_AMOUNT.format(value=value))
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(BAD_AMOUNT.format(value=value))
    return -amount if negative else amount


def outcome(fn, value):
    try:
        result = fn(value)
    except ValueError as exc:
        return ("error", str(exc))
    return ("ok", result, str(result))


amount_text = st.one_of(
    st.text(alphabet="0123456789.,-+() KESHkesh\u00a0１", max_size=14),
    st.from_regex(r"[-+]?[0-9]{1,9}(\.[0-9]{1,3})?", fullmatch=True),
    st.text(max_size=8),
)


@given(amount_text)
@settings(max_examples=400, deadline=None)
def test_amounts_read_by_the_fast_path_as_by_the_full_steps(value):
    assert outcome(parse_amount, value) == outcome(reference_amount, value)


@given(st.one_of(st.text(max_size=12), st.text(alphabet=" a\t\u00a0\u2028\x1c", max_size=8)))
@settings(max_examples=400, deadline=None)
def test_cell_text_by_the_fast_path_as_by_split_and_join(value):
    assert _text(value) == " ".join(value.split())


row = st.tuples(
    st.sampled_from(["UCA1B2C3D4", "UCA1B2C3D5", "ucA9Z8Y7X6", "BAD", ""]),
    st.sampled_from(["10-03-2026 08:00:00", "2026-03-10 09:15", "", "31-02-2026 10:00:00", "yesterday"]),
    st.sampled_from(
        ["Merchant Payment from 0712***345 - MARY", "Pay merchant Charge", "Business Buy Goods to 300300", ""]
    ),
    st.sampled_from(["Completed", "Failed", "completed"]),
    st.sampled_from(["150.00", "", "0", "-13.75", "1,200.00", "abc", "150.005"]),
    st.sampled_from(["", "0.55", "600.00", "x"]),
)


@given(st.lists(row, max_size=12))
@settings(max_examples=150, deadline=None)
def test_a_streamed_parse_is_the_parse(rows):
    data = (
        HEAD + "".join(",".join((r[0], r[1], "", r[2], r[3], r[4], r[5], "")) + "\n" for r in rows)
    ).encode()
    parsed = parse_statement(data, "s.csv")
    stream = statement_rows_stream(data, "s.csv")
    streamed = list(stream)
    assert streamed == parsed.rows
    assert (stream.errors, stream.warnings, stream.header_row) == (parsed.errors, parsed.warnings, 1)
