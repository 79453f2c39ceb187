"""The chart of accounts. Services find accounts by `key`; codes and names are for people."""

CHART = [
    ("1010", "M-Pesa till", "asset", "mpesa_till", "Money paid into the Buy Goods till"),
    ("1020", "STK clearing - PayHero", "asset", "stk_clearing_payhero", "STK payments collected by PayHero"),
    (
        "1021",
        "STK clearing - Daraja",
        "asset",
        "stk_clearing_daraja",
        "STK payments via Daraja",
    ),
    ("1029", "STK clearing - Simulator", "asset", "stk_clearing_simulator", "Demo payments (no real money)"),
    (
        "2010",
        "Unallocated receipts",
        "liability",
        "unallocated_receipts",
        "Till money not yet paying an order",
    ),
    ("2020", "Bundles owed", "liability", "bundles_owed", "Paid orders not yet delivered"),
    ("4010", "Bundle sales", "income", "bundle_sales", "Delivered bundles"),
    ("4090", "Sales refunds", "contra_income", "sales_refunds", "Refunds of delivered bundles"),
]


def chart_ensure(Account=None, EntryCounter=None) -> None:  # noqa: N803 (model classes)
    """Create the accounts and the journal counter if missing (idempotent).

    Migrations pass their historical models; tests that flush the database call it bare.
    """
    if Account is None:
        from ledger.models import Account, EntryCounter
    for code, name, kind, key, description in CHART:
        Account.objects.update_or_create(
            key=key, defaults={"code": code, "name": name, "kind": kind, "description": description}
        )
    EntryCounter.objects.get_or_create(name="journal")
