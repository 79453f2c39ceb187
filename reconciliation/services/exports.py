"""The claims export contract: exactly these columns, one row per claim.

sender, code, recipient, status, reason, receipt, amount, bundle
Phones E.164 without "+", codes normalised, status/reason are the codes (e.g. needs_review,
possible_typo); amount is the receipt amount when matched, else the claimed amount.
Text a spreadsheet would run as a formula (starting =, +, -, @, tab or CR) gets a leading "'".
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from console.kernel.money import plain
from console.kernel.uploads import spreadsheet_safe
from reconciliation.models import Claim

CLAIM_EXPORT_COLUMNS = ["sender", "code", "recipient", "status", "reason", "receipt", "amount", "bundle"]


def claims_export_rows(queryset=None) -> Iterator[list[str]]:
    """Header then one row per claim, streamed in constant memory."""
    qs = Claim.objects.all() if queryset is None else queryset
    yield list(CLAIM_EXPORT_COLUMNS)
    rows = qs.order_by("claimed_at", "pk").values_list(
        "sender_msisdn",
        "code",
        "recipient_msisdn",
        "status",
        "reason",
        "receipt__code",
        "receipt__amount",
        "suggested_receipt__code",
        "suggested_receipt__amount",
        "claimed_amount",
        "bundle__name",
    )
    for (
        sender,
        code,
        recipient,
        status,
        reason,
        receipt,
        r_amount,
        s_code,
        s_amount,
        claimed,
        bundle,
    ) in rows.iterator(chunk_size=2000):
        # A receipt with exactly the claimed code counts as matched even when a person must
        # still decide (amount mismatch, code already used); a look-alike suggestion does not.
        if not receipt and s_code == code:
            receipt, r_amount = s_code, s_amount
        amount = r_amount if receipt else claimed
        yield [
            spreadsheet_safe(sender),
            spreadsheet_safe(code),
            spreadsheet_safe(recipient),
            status,
            reason,
            spreadsheet_safe(receipt or ""),
            "" if amount is None else plain(amount),
            spreadsheet_safe(bundle or ""),
        ]


class _Echo:
    def write(self, value):
        return value


def claims_export_lines(queryset=None) -> Iterator[str]:
    """CSV lines for a StreamingHttpResponse."""
    writer = csv.writer(_Echo())
    for row in claims_export_rows(queryset):
        yield writer.writerow(row)


def claims_export_write(*, path: str, queryset=None) -> int:
    """Write the export to ``path``; returns the number of claims written."""
    count = -1
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        for row in claims_export_rows(queryset):
            writer.writerow(row)
            count += 1
    return count
