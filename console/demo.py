"""Demo data for a laptop: a day of till payments, WhatsApp claims and STK orders.

Everything goes through the real services and parsers (a generated Org-portal statement, a
generated Android WhatsApp export, the simulator gateway), so the demo shows what production
does: verified claims, each needs-review reason, unmatched receipts, paid and delivered orders.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from django.db import transaction
from django.utils import timezone

from catalog.models import Bundle
from ledger.gateways.simulator import SimulatorGateway
from ledger.models import Order
from ledger.services import order_create, order_mark_delivered, stk_apply_result, stk_send
from reconciliation.models import StatementImport
from reconciliation.services.claims import whatsapp_import
from reconciliation.services.matcher import claims_reconcile
from reconciliation.services.receipts import statement_import_create, statement_import_start

DEMO_STATEMENT_NAME = "demo-statement.csv"
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def receipt_code(when: dt.datetime, rng: random.Random) -> str:
    """A code whose first three characters encode its date, as real M-Pesa codes do."""
    local = timezone.localtime(when)
    year = chr(ord("L") + local.year - 2017)
    month = "ABCDEFGHIJKL"[local.month - 1]
    day = str(local.day) if local.day < 10 else chr(ord("A") + local.day - 10)
    return year + month + day + "".join(rng.choice(ALPHABET) for _ in range(7))


SLIPS = {"0": "O", "O": "0", "1": "I", "I": "1", "5": "S", "S": "5", "8": "B", "B": "8", "2": "Z", "Z": "2"}


def _slip(code: str) -> str:
    """The code as a customer might mistype it: one look-alike character swapped."""
    for i in range(3, len(code)):
        if code[i] in SLIPS:
            return code[:i] + SLIPS[code[i]] + code[i + 1 :]
    return code[:3] + "O" + code[4:] if code[3] == "0" else code[:3] + "0" + code[4:]


def _statement(payments: list[tuple[str, int, dt.datetime, str]]) -> bytes:
    lines = [
        "Organisation Name: TILLBOOK DATA",
        "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,Balance,"
        "Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No.",
    ]
    balance = 0
    for code, amount, when, name in payments:
        balance += amount
        stamp = timezone.localtime(when).strftime("%d-%m-%Y %H:%M:%S")
        payer = f"2547******{code[-3:].replace('O', '0')}"
        lines.append(
            f"{code},{stamp},{stamp},Merchant Payment from {payer} - {name},Completed,{amount}.00,,"
            f"{balance}.00,TRUE,Customer Merchant Payment,{payer} - {name},,"
        )
    return ("\n".join(lines) + "\n").encode()


def _chat(messages: list[tuple[dt.datetime, str, str]]) -> bytes:
    lines = []
    for when, author, text in sorted(messages):
        local = timezone.localtime(when)
        hour = local.strftime("%I").lstrip("0")
        lines.append(f"{local:%d/%m/%Y}, {hour}:{local:%M}\u202f{local:%p}".lower() + f" - {author}: {text}")
    return ("\n".join(lines) + "\n").encode()


def demo_data_load(*, now: dt.datetime | None = None, seed: int = 7) -> dict:
    """Load the demo day once. Returns counts; does nothing when demo data is already there."""

    if StatementImport.objects.filter(original_name=DEMO_STATEMENT_NAME).exists() or Order.objects.exists():
        return {}
    rng = random.Random(seed)
    now = now or timezone.now()
    bundles = {b.slug: b for b in Bundle.objects.active()}
    price = {slug: int(b.price) for slug, b in bundles.items()}

    # --- The till: ten payments over the last six hours, as the portal statement shows them ---
    people = ["JANE WANJIKU", "BRIAN OTIENO", "MERCY AKINYI", "KEVIN MUTUA", "FAITH CHEBET", "JOHN KAMAU",
              "GRACE NJERI", "PETER OMONDI", "LUCY WAMBUI", "SAMUEL KIPROTICH"]  # fmt: skip
    amounts = [price["daily-2gb"], price["weekly-15gb"], price["daily-5gb"], price["monthly-25gb"],
               price["daily-2gb"], 180, price["weekly-8-75gb"], price["daily-2gb"], price["monthly-50gb"],
               price["daily-5gb"]]  # fmt: skip
    payments = []
    for i, (name, amount) in enumerate(zip(people, amounts, strict=True)):
        when = now - dt.timedelta(hours=6) + dt.timedelta(minutes=33 * i)
        payments.append((receipt_code(when, rng), amount, when, name))
    imp = statement_import_create(data=_statement(payments), filename=DEMO_STATEMENT_NAME)
    statement_import_start(import_id=imp.pk, inline=True)

    # --- WhatsApp: what customers said about those payments (and one that never arrived) ------
    def phone(i: int) -> str:
        return f"+254 7{12 + i:02d} {345 + i:03d} {600 + i:03d}"

    code = [p[0] for p in payments]
    typo = _slip(code[6])
    lost = receipt_code(now - dt.timedelta(hours=5), rng)
    not_yet = receipt_code(now - dt.timedelta(minutes=20), rng)
    chat = [
        (payments[0][2] + dt.timedelta(minutes=2), phone(0), f"Hello, I have paid for 2GB. Code {code[0]}"),
        (payments[1][2] + dt.timedelta(minutes=4), phone(1),
         f"{code[1].lower()}\nRecipient Number: 0722 000 111"),
        (payments[2][2] + dt.timedelta(minutes=1), phone(2),
         f"{code[2]} Confirmed. Ksh{amounts[2]:,}.00 paid to TILLBOOK DATA. on "
         f"{timezone.localtime(payments[2][2]):%-d/%-m/%y} at 9:14 AM.New M-PESA balance is Ksh1,204.00. "
         "Transaction cost, Ksh0.00.\nweka kwa 0733 444 555 please"),
        (payments[3][2] + dt.timedelta(minutes=6), phone(3),
         f"M-Pesa Code: {code[3]}\nRecipient Number: 0799 888 777"),
        (payments[5][2] + dt.timedelta(minutes=3), phone(5), f"Paid 180 for daily {code[5]}"),
        (payments[6][2] + dt.timedelta(minutes=5), phone(6), f"weekly 8.75GB code {typo}"),
        (payments[7][2] + dt.timedelta(minutes=2), phone(7), f"Code {code[7]} load 0711 222 333"),
        (payments[7][2] + dt.timedelta(minutes=30), phone(8), f"Nimetuma {code[7]} niwekee bundles"),
        (now - dt.timedelta(hours=4), phone(9), f"I paid 150 code {lost}, please load"),
        (now - dt.timedelta(minutes=10), phone(4), f"Sent {code[4]} for daily 2GB thanks"),
        (now - dt.timedelta(minutes=15), phone(11), f"Ksh 750 imeenda, code {not_yet} weka 0745 123 456"),
        (now - dt.timedelta(minutes=8), phone(10), "Hi, how do I buy the weekly bundle?"),
    ]  # fmt: skip
    chat_bytes = _chat(chat)
    with transaction.atomic():
        whatsapp_import(data=chat_bytes, filename="WhatsApp Chat with Tillbook Support.txt")
    run = claims_reconcile(trigger="manual")

    # --- STK: five pushes through the simulator, two delivered ---------------------------------
    gateway = SimulatorGateway()
    outcomes = [("254712000001", "daily-2gb", 0), ("254712000002", "weekly-15gb", 0),
                ("254700000001", "daily-5gb", 1032), ("254712000003", "monthly-25gb", 0),
                ("254700000003", "daily-2gb", 1)]  # fmt: skip
    delivered = 0
    for i, (msisdn, slug, result_code) in enumerate(outcomes):
        order = order_create(bundle=bundles[slug], payer_msisdn=msisdn)
        stk = stk_send(order=order)
        body = gateway.build_callback(
            stk.checkout_request_id, stk.merchant_request_id, int(order.price), msisdn, result_code
        )
        stk_apply_result(stk=stk, result=gateway.parse_callback(json.dumps(body).encode()), source="demo")
        order.refresh_from_db()
        if result_code == 0 and i < 2:
            order_mark_delivered(order=order, actor=None)
            delivered += 1
    return {
        "receipts": len(payments),
        "messages": len(chat),
        "matcher": run.counts,
        "stk_orders": len(outcomes),
        "delivered": delivered,
    }
