"""A generator of realistic WhatsApp chat exports and M-Pesa Org-portal statements, with ground truth.

The measuring instrument for the claims parser and the matcher: ``generate(seed, ...)`` builds
one busy customer group ("Tillbook Bundles") over a few days, written exactly as WhatsApp
exports it for the chosen phone style (formats doc §5), and the till's Org-portal CSV statement
(§4.1) of the same days. ``Corpus.truth`` says, for every payment report in the chat, what a
careful person would conclude: verified for whom and at which price, or which anomaly.

Deterministic: the same arguments give the same bytes (one ``random.Random(seed)``; no set or
clock is iterated). No Django import: ``python -m tests.reconciliation.chatgen --seed 5
--style ios --out /tmp/x`` writes the .txt (and the iOS .zip), the .csv and truth.json.

Ground-truth rules the scenarios follow:
- every code is unique in the corpus, also up to look-alike slips (O/0 I/1 S/5 B/8 Z/2), and
  carries the payment's Nairobi date in its first three characters (§3.5);
- a valid payment's receipt amount is exactly one active bundle's price (fixtures/bundles.json);
  an amount-mismatch receipt is no bundle's price;
- the recipient is the number the customer wrote for this payment: in the report, or in a
  message of the same sender a few minutes before or after it; otherwise the sender's own
  number (then the export shows the sender as a number);
- a report is always written after the payment it quotes; receipt times are seconds-precise
  and a few minutes (sometimes hours) before the report;
- a sender's separate purchases are at least three hours apart, so context never leaks.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
import zipfile
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers

from console.kernel.mpesa import date_prefix, embedded_date

# The M-PESA Org portal statement's columns, in the portal's order (formats doc, statements).
STATEMENT_COLUMNS = [
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
]

NAIROBI = ZoneInfo("Africa/Nairobi")
ROOT = Path(__file__).resolve().parents[2]
BUNDLES_FIXTURE = ROOT / "fixtures" / "bundles.json"

# Mirrors of console/settings.py defaults (the suite checks they still agree).
TILL_NUMBER = "6944804"
TILL_NAME = "TILLBOOK DATA"
SUPPORT_NAME = "Tillbook Support"
SUPPORT_MSISDN = "254782070228"
ORG_NAME = "TILLBOOK DATA LTD"
GROUP_NAME = "Tillbook Bundles"

# Expected outcomes.
VERIFIED = "verified"
SUPERSEDED = "superseded"
OTHER_MERCHANT = "other_merchant"
CODE_ALREADY_USED = "code_already_used"
AMOUNT_MISMATCH = "amount_mismatch"
UNKNOWN_CODE = "unknown_code"
UNPARSEABLE = "unparseable"
ANOMALIES = (OTHER_MERCHANT, CODE_ALREADY_USED, AMOUNT_MISMATCH, UNKNOWN_CODE, UNPARSEABLE)

STYLES = ("android", "ios")
DATE_ORDERS = ("dmy", "mdy", "iso")
CLOCKS = ("12h", "24h")
LOOKALIKES = str.maketrans({"O": "0", "I": "1", "S": "5", "B": "8", "Z": "2"})
_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# Safaricom mobile prefixes (07xx / 011x); the business number's 078x range is never drawn.
_PREFIXES = (
    [f"07{n:02d}" for n in range(0, 30)]
    + [f"07{n}" for n in (40, 41, 42, 43, 45, 46, 48, 57, 58, 59, 68, 69)]
    + [f"07{n}" for n in range(90, 100)]
    + [f"011{n}" for n in range(0, 6)]
)

_FIRST = (
    "Mary Brian Kevin Faith Grace Dennis Mercy Collins Esther Victor Joy Peter Ann Moses Janet Felix Purity"
)
_FIRST += (
    " Ian Sharon Eric Caro Wanjiru Otieno Achieng Wafula Njeri Kamau Chebet Kiprono Nekesa Baraka Zawadi"
)
_FIRST += " Hassan Amina Juma Halima Mutua Mwende Kipchoge Atieno"
FIRST_NAMES = tuple(_FIRST.split(" "))
_LAST = "Wanjiku Otieno Mwangi Achieng Kamau Njoroge Odhiambo Mutua Chebet Kiprotich Wafula Nyambura Omondi"
_LAST += " Wairimu Kariuki Onyango Muthoni Kilonzo Ruto Barasa Juma Hassan Ndungu Maina Akinyi Cheruiyot"
LAST_NAMES = tuple(_LAST.split(" "))
NICKNAMES = (
    "Mama Njeri",
    "Ken Mtaa",
    "Shiko",
    "Wafula Bro",
    "Cate 💕",
    "Dan Kinyozi",
    "Mose Boda",
    "Aunty Wambui",
)
OTHER_MERCHANTS = (
    "NAIVAS SUPERMARKET",
    "QUICKMART KILIMANI",
    "POWERMART SUPERMARKET",
    "JAVA HOUSE ABC PLACE",
    "CARREFOUR TRM",
    "MAMA MBOGA SHOP",
    "KAMAU ELECTRONICS",
    "SAFARICOM DATA BUNDLES",
)
# How our registered name shows in a pasted SMS: as M-Pesa prints it, re-typed, or cut short.
OUR_NAMES = (
    (60, TILL_NAME),
    (10, "Tillbook Data"),
    (6, "tillbook data"),
    (6, "TILLBOOK  DATA"),
    (8, "TILLBOOK DAT"),
    (5, "TILLBOOK"),
    (5, "Tillbook data"),
)
PROMOS = (
    "Save frequent Tills for quick payment on M-PESA app https://bit.ly/mpesalnk",
    "To move money from bank to M-PESA, dial *334#>Withdraw>From bank to MPESA",
    "Download new M-PESA app on http://bit.ly/mpesappsm & get 500MB FREE data.",
    "",
)
EMOJIS = ("🙏", "👍", "🙏🏾", "😊", "✅", "🙌", "🔥", "😅", "💯", "")
NOT_BUNDLE_AMOUNTS = tuple(
    Decimal(a) for a in ("100", "200", "300", "50", "1000", "160", "140", "350", "450", "600", "2000", "170")
)
BUNDLE_WORDS = {
    "150.00": ("2GB", "2gb", "daily 2GB", "2 GB", "Daily 2GB"),
    "250.00": ("5GB", "5gb", "daily 5GB", "5 GB"),
    "500.00": ("8.75GB", "weekly 8.75GB", "weekly", "8.75gb"),
    "750.00": ("15GB", "weekly 15GB", "15gb"),
    "1500.00": ("25GB", "monthly 25GB", "monthly"),
    "2500.00": ("50GB", "monthly 50GB", "50gb"),
}
PRICE_WEIGHTS = {"150.00": 46, "250.00": 20, "500.00": 14, "750.00": 8, "1500.00": 8, "2500.00": 4}

# Report scenarios: (name, weight). A scenario yields one or more truth items.
SCENARIOS = (
    ("whole", 150),
    ("lower", 30),
    ("capitalised", 20),
    ("grouped", 70),
    ("digit_tail", 15),
    ("split_lines", 20),
    ("split_messages", 20),
    ("number_in_message", 90),
    ("saved_contact", 30),
    ("context_before", 45),
    ("context_after", 15),
    ("payer_and_target", 12),
    ("two_codes", 8),
    ("sms_paste", 75),
    ("sms_paste_number", 25),
    ("other_merchant", 8),
    ("correction", 22),
    ("duplicate", 15),
    ("amount_mismatch", 20),
    ("sms_amount_altered", 6),
    ("unknown_code", 22),
    ("unparseable", 22),
)
MIDNIGHT_SCENARIOS = ("sms_paste", "whole", "number_in_message")


# ---------------------------------------------------------------------------------------------
# What the corpus is made of
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Author:
    label: str  # as the export shows it, without invisible marks
    msisdn: str | None  # the number the export shows, when it shows one
    phone: str  # the person's own number
    kind: str  # number | saved | tilde | business


@dataclass
class Message:
    at: dt.datetime  # naive Nairobi time, to the second
    author: Author | None  # None: a system line
    text: str
    kind: str  # report | context | followup | chatter | business | system | media | deleted
    category: str = ""
    truth: list[int] = field(default_factory=list)  # truth items this message reports
    related: list[int] = field(default_factory=list)  # truth items whose number it gives
    offset: int = 0  # seconds after its block starts (before placement)
    edited: bool = False  # the export appends "<This message was edited>"


@dataclass
class Receipt:
    code: str
    amount: Decimal
    paid_at: dt.datetime  # naive Nairobi
    payer: str
    payer_name: str


@dataclass
class Truth:
    id: int
    category: str
    expected: str
    code: str
    recipient: str | None = None  # 2547…, for verified
    price: str | None = None  # "150.00", for verified
    sender: str | None = None  # the author's number when the export shows it
    author: str = ""
    sent_at: str = ""  # the report message's time as the export shows it (ISO, +03:00)
    text: str = ""
    paid_at: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    seed: int
    style: str
    date_order: str
    clock: str
    chat_bytes: bytes
    chat_filename: str
    statement_bytes: bytes
    statement_filename: str
    truth: list[Truth]
    messages: list[Message]
    receipts: list[Receipt]
    stamp_format: str

    @property
    def business_messages(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "business"]

    @property
    def chatter_messages(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "chatter"]

    @property
    def last_message_at(self) -> dt.datetime:
        return max(m.at for m in self.messages).replace(tzinfo=NAIROBI)

    def chat_zip(self) -> bytes:
        """The export as WhatsApp on iOS shares it: a zip holding ``_chat.txt``."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo("_chat.txt", date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info, self.chat_bytes)
        return buffer.getvalue()

    def upload(self) -> tuple[bytes, str]:
        """(data, filename) as staff upload it: the .txt on Android, the .zip on iOS."""
        if self.style == "ios":
            return self.chat_zip(), f"WhatsApp Chat - {GROUP_NAME}.zip"
        return self.chat_bytes, self.chat_filename

    def counts(self) -> dict:
        by_category: dict[str, int] = {}
        for item in self.truth:
            key = f"{item.category}:{item.expected}"
            by_category[key] = by_category.get(key, 0) + 1
        by_expected: dict[str, int] = {}
        for item in self.truth:
            by_expected[item.expected] = by_expected.get(item.expected, 0) + 1
        kinds: dict[str, int] = {}
        for m in self.messages:
            kinds[m.kind] = kinds.get(m.kind, 0) + 1
        tags: dict[str, int] = {}
        for item in self.truth:
            for tag in item.tags:
                tags[tag] = tags.get(tag, 0) + 1
        return {
            "truth": len(self.truth),
            "expected": dict(sorted(by_expected.items())),
            "categories": dict(sorted(by_category.items())),
            "messages": dict(sorted(kinds.items())),
            "tags": dict(sorted(tags.items())),
            "receipts": len(self.receipts),
        }

    def truth_json(self) -> str:
        return json.dumps(
            {
                "seed": self.seed,
                "style": self.style,
                "date_order": self.date_order,
                "clock": self.clock,
                "stamp_format": self.stamp_format,
                "counts": self.counts(),
                "truth": [asdict(t) for t in self.truth],
                "business_messages": [_message_json(m) for m in self.business_messages],
                "chatter_messages": [_message_json(m) for m in self.chatter_messages],
            },
            ensure_ascii=False,
            indent=1,
        )


def _message_json(m: Message) -> dict:
    return {"author": m.author.label if m.author else "", "at": m.at.isoformat(), "text": m.text}


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------
def bundle_prices() -> list[Decimal]:
    rows = json.loads(BUNDLES_FIXTURE.read_text())
    return sorted(Decimal(r["fields"]["price"]) for r in rows if r["fields"].get("active", True))


code_prefix = date_prefix  # the first three characters of a code paid on a day
code_date = embedded_date


def lookalike_key(code: str) -> str:
    return code.upper().translate(LOOKALIKES)


def is_kenyan_mobile(msisdn: str) -> bool:
    try:
        number = phonenumbers.parse("+" + msisdn)
    except phonenumbers.NumberParseException:
        return False
    return (
        msisdn.startswith("254")
        and len(msisdn) == 12
        and phonenumbers.is_valid_number(number)
        and phonenumbers.number_type(number)
        in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    )


def international(msisdn: str) -> str:
    """How WhatsApp shows an unsaved Kenyan number: ``+254 712 345678``."""
    return phonenumbers.format_number(
        phonenumbers.parse("+" + msisdn), phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )


def _pick(rng: random.Random, weighted):
    values = [v for _, v in weighted]
    weights = [w for w, _ in weighted]
    return rng.choices(values, weights=weights)[0]


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _h12(at: dt.datetime | dt.time) -> tuple[int, str]:
    hour = at.hour % 12 or 12
    return hour, ("AM" if at.hour < 12 else "PM")


# ---------------------------------------------------------------------------------------------
# The export's time stamps
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stamp:
    """One phone's export layout: ``fmt`` names it, ``seconds`` whether times keep seconds."""

    style: str
    date_order: str
    clock: str
    variant: int
    nnbsp: bool  # U+202F between the time and am/pm (exports since 2023)

    @property
    def seconds(self) -> bool:
        return self.style == "ios"

    @property
    def sample(self) -> str:
        """How 30 Nov 2026 23:58:07 is written, e.g. ``30/11/2026, 11:58\u202fpm - ``."""
        return self.render(dt.datetime(2026, 11, 30, 23, 58, 7))

    def _date(self, at: dt.datetime) -> str:
        d, m, y, yy = at.day, at.month, at.year, at.year % 100
        if self.date_order == "iso":
            return f"{y}/{m:02d}/{d:02d}" if self.style == "ios" else f"{y}-{m:02d}-{d:02d}"
        if self.date_order == "mdy":
            return f"{m}/{d}/{yy:02d}"
        if self.variant == 0 or (self.style == "ios" and self.clock == "24h"):
            return f"{d:02d}/{m:02d}/{y}"
        return f"{d}/{m}/{yy:02d}" if self.clock == "12h" else f"{d:02d}/{m:02d}/{yy:02d}"

    def _time(self, at: dt.datetime) -> str:
        seconds = f":{at.second:02d}" if self.seconds else ""
        if self.clock == "24h":
            return f"{at.hour:02d}:{at.minute:02d}{seconds}"
        hour, meridiem = _h12(at)
        if self.date_order == "iso":
            meridiem = "a.m." if meridiem == "AM" else "p.m."
        elif self.style == "android" and self.date_order == "dmy":
            meridiem = meridiem.lower()
        space = "\u202f" if self.nnbsp else " "
        return f"{hour}:{at.minute:02d}{seconds}{space}{meridiem}"

    def render(self, at: dt.datetime) -> str:
        date, time = self._date(at), self._time(at)
        if self.style == "ios":
            no_comma = self.clock == "24h" and self.date_order == "dmy" and self.variant == 1
            return f"[{date}{'' if no_comma else ','} {time}] "
        if self.date_order == "iso" and self.variant == 1:
            return f"{date} {time} - "
        return f"{date}, {time} - "

    def shown(self, at: dt.datetime) -> dt.datetime:
        """The time the export shows (Android drops the seconds)."""
        return at if self.seconds else at.replace(second=0)


# ---------------------------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------------------------
@dataclass
class Block:
    at: dt.datetime  # planned start
    messages: list[Message]
    session: int


class _Builder:
    def __init__(self, rng: random.Random, style: str, start: dt.datetime, end: dt.datetime):
        self.rng = rng
        self.style = style
        self.start, self.end = start, end
        self.prices = bundle_prices()
        self.price_keys = [f"{p:.2f}" for p in self.prices]
        self.codes: dict[str, str] = {}  # look-alike key -> code
        self.phones: set[str] = {SUPPORT_MSISDN, "254712345678"}  # ours, and the example in broadcasts
        self.customers: list[Author] = []
        self.busy: dict[str, list[dt.datetime]] = {}  # phone -> session times
        self.receipts: list[Receipt] = []
        self.truth: list[Truth] = []
        self.blocks: list[Block] = []
        self.session = 0
        self.force_paid: dt.datetime | None = None
        self.business = [
            Author(SUPPORT_NAME, None, SUPPORT_MSISDN, "business"),
            Author(international(SUPPORT_MSISDN), SUPPORT_MSISDN, SUPPORT_MSISDN, "business"),
        ]

    # --- identities ------------------------------------------------------------------------
    def new_phone(self) -> str:
        while True:
            prefix = self.rng.choice(_PREFIXES)
            msisdn = (
                "254" + prefix[1:] + "".join(self.rng.choice("0123456789") for _ in range(10 - len(prefix)))
            )
            if msisdn not in self.phones and is_kenyan_mobile(msisdn):
                self.phones.add(msisdn)
                return msisdn

    def person_name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def new_customer(self, kind: str = "number") -> Author:
        phone = self.new_phone()
        if kind == "saved":
            label = self.rng.choice(NICKNAMES) if self.rng.random() < 0.2 else self.person_name()
            return Author(label, None, phone, "saved")
        if kind == "tilde":
            return Author("~\u202f" + self.rng.choice(FIRST_NAMES), None, phone, "tilde")
        label = international(phone)
        if self.style == "ios" and self.rng.random() < 0.5:
            label = label.replace(" ", "\u00a0", 1)
        return Author(label, phone, phone, "number")

    def customer(self, at: dt.datetime, kind: str = "number") -> Author:
        """A returning customer free around ``at`` (30%), else a new one."""
        if self.rng.random() < 0.3:
            pool = [c for c in self.customers if c.kind == kind]
            for _ in range(4):
                if not pool:
                    break
                c = self.rng.choice(pool)
                if all(abs((at - t).total_seconds()) > 3 * 3600 for t in self.busy.get(c.phone, [])):
                    self.busy[c.phone].append(at)
                    return c
        c = self.new_customer(kind)
        self.customers.append(c)
        self.busy[c.phone] = [at]
        return c

    # --- codes -----------------------------------------------------------------------------
    def _register(self, code: str) -> bool:
        key = lookalike_key(code)
        if key in self.codes:
            return False
        self.codes[key] = code
        return True

    def new_code(self, day: dt.date, digit_tail: bool = False) -> str:
        while True:
            if digit_tail:
                tail = "".join(self.rng.choice("0123456789") for _ in range(7))
                tail = self.rng.choice("123456789") + tail[1:]
            else:
                rest = "".join(
                    self.rng.choice("0123456789")
                    if self.rng.random() < 0.3
                    else self.rng.choice(_CODE_ALPHABET[:26])
                    for _ in range(6)
                )
                tail = self.rng.choice("123456789") + rest
            code = code_prefix(day) + tail
            if self._register(code):
                return code

    def typo_of(self, code: str) -> str:
        """A mistyped copy: one wrong character or two swapped, never a look-alike slip."""
        for _ in range(200):
            chars = list(code)
            i = self.rng.randrange(3, 9)
            if self.rng.random() < 0.4 and chars[i] != chars[i + 1]:
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
            else:
                chars[i] = self.rng.choice([c for c in _CODE_ALPHABET if c != chars[i]])
            wrong = "".join(chars)
            if self._register(wrong):
                return wrong
        raise RuntimeError("no typo found")

    # --- writing ---------------------------------------------------------------------------
    def fill(self, template: str, **values) -> str:
        """``template`` filled in, with random extra spaces between words (never inside a code
        or a number) and now and then a trailing or leading space."""
        values.setdefault("e", self.rng.choice(EMOJIS))
        values.setdefault("g", "")
        if self.rng.random() < 0.08 and " " in template:
            spaces = [i for i, ch in enumerate(template) if ch == " "]
            i = self.rng.choice(spaces)
            template = template[:i] + "  " + template[i + 1 :]
        text = template.format(**values)
        text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
        r = self.rng.random()
        if r < 0.04:
            text += " "
        elif r < 0.06:
            text = " " + text
        return text

    def number_text(self, msisdn: str) -> str:
        local = "0" + msisdn[3:]
        return _pick(
            self.rng,
            [
                (30, local),
                (25, f"{local[:4]} {local[4:7]} {local[7:]}"),
                (8, f"{local[:4]}-{local[4:7]}-{local[7:]}"),
                (10, "+" + msisdn),
                (8, msisdn),
                (6, f"+254 {msisdn[3:6]} {msisdn[6:9]} {msisdn[9:]}"),
                (5, f"+254 {msisdn[3:6]} {msisdn[6:]}"),
                (4, f"{local[:4]} {local[4:]}"),
                (4 if local.startswith("07") else 0, msisdn[3:]),
            ],
        )

    def code_text(self, code: str, how: str) -> str:
        if how == "whole":
            return code
        if how == "lower":
            return code.lower()
        if how == "capitalised":
            return code[0] + code[1:].lower()
        if how in ("grouped", "digit_tail"):
            sizes = (
                (3, 3, 4)
                if how == "digit_tail"
                else _pick(
                    self.rng,
                    [
                        (30, (3, 3, 4)),
                        (15, (3, 7)),
                        (15, (5, 5)),
                        (10, (4, 3, 3)),
                        (8, (3, 4, 3)),
                        (5, (2, 4, 4)),
                        (8, (3, 3, 2, 2)),
                        (4, (2, 2, 2, 2, 2)),
                        (5, (4, 6)),
                    ],
                )
            )
            sep = _pick(self.rng, [(55, " "), (40, "-"), (5, "  ")])
            parts, i = [], 0
            for size in sizes:
                parts.append(code[i : i + size])
                i += size
            text = sep.join(parts)
            return text.lower() if self.rng.random() < 0.25 else text
        raise ValueError(how)

    def amount_text(self, amount: Decimal) -> str:
        whole = int(amount)
        return _pick(
            self.rng,
            [
                (40, f"{whole}"),
                (10, f"{whole}/="),
                (10, f"{whole} bob"),
                (10, f"Ksh {whole}"),
                (8, f"ksh{whole}"),
                (6, f"sh.{whole}"),
                (6, f"{whole:,}"),
            ],
        )

    def bundle_text(self, price: Decimal) -> str:
        return self.rng.choice(BUNDLE_WORDS.get(f"{price:.2f}", ("bundles",)))

    def greeting(self, at: dt.datetime) -> str:
        hour = at.hour
        options = ["", "", "", "Hi ", "Hello ", "Habari ", "Sasa ", "Niaje ", "Mambo ", "Boss ", "Hi admin, "]
        if 5 <= hour < 12:
            options += ["Good morning, ", "Habari ya asubuhi, "]
        elif 17 <= hour < 23:
            options += ["Good evening, ", "Habari ya jioni, "]
        return self.rng.choice(options)

    def customer_sms(self, code: str, amount: Decimal, payee: str, paid_at: dt.datetime) -> str:
        """A customer's till-payment SMS as M-Pesa sends it (formats doc §3.1)."""
        ksh = "KSH" if self.rng.random() < 0.1 else "Ksh"
        hour, meridiem = _h12(paid_at)
        balance = Decimal(self.rng.randrange(0, 2_500_000)) / 100
        limit = Decimal(500_000) - amount - Decimal(self.rng.randrange(0, 50) * 100)
        new = ".New" if self.rng.random() < 0.8 else ". New"
        promo = self.rng.choice(PROMOS)
        sms = (
            f"{code} Confirmed. {ksh}{_money(amount)} paid to {payee}. on "
            f"{paid_at.day}/{paid_at.month}/{paid_at.year % 100:02d} at {hour}:{paid_at.minute:02d}"
            f" {meridiem}{new} M-PESA balance is {ksh}{_money(balance)}. Transaction cost, {ksh}0.00. "
            f"Amount you can transact within the day is {_money(limit)}."
        )
        return f"{sms} {promo}".rstrip()

    def our_name(self) -> str:
        return _pick(self.rng, OUR_NAMES)

    # --- money -----------------------------------------------------------------------------
    def price(self) -> Decimal:
        key = _pick(self.rng, [(w, k) for k, w in PRICE_WEIGHTS.items() if k in self.price_keys])
        return Decimal(key)

    def paid_before(self, report_at: dt.datetime) -> dt.datetime:
        """When the payment a report quotes was made: usually minutes before, sometimes hours;
        ``force_paid`` (set for the payments made just before midnight) wins once."""
        if self.force_paid is not None:
            paid, self.force_paid = self.force_paid, None
            return paid
        r = self.rng.random()
        if r < 0.7:
            seconds = self.rng.randint(30, 300)
        elif r < 0.95:
            seconds = self.rng.randint(300, 1800)
        else:
            seconds = self.rng.randint(1800, 3 * 3600)
        paid = report_at - dt.timedelta(seconds=seconds)
        return max(paid, self.start - dt.timedelta(minutes=30))

    def receipt(
        self, paid_at: dt.datetime, amount: Decimal, payer: Author | None, code: str | None = None
    ) -> str:
        code = code or self.new_code(paid_at.date())
        if payer is None or self.rng.random() < 0.2:
            phone, name = self.new_phone(), self.person_name()
        else:
            phone = payer.phone
            name = self.person_name()
        name = name.upper() if self.rng.random() < 0.7 else name
        self.receipts.append(Receipt(code, amount, paid_at, phone, name))
        return code

    # --- truth -----------------------------------------------------------------------------
    def item(self, category: str, expected: str, code: str, **kwargs) -> Truth:
        item = Truth(id=len(self.truth), category=category, expected=expected, code=code, **kwargs)
        self.truth.append(item)
        return item

    def verified(
        self, category: str, code: str, recipient: str, price: Decimal, author: Author, paid_at
    ) -> Truth:
        return self.item(
            category,
            VERIFIED,
            code,
            recipient=recipient,
            price=f"{price:.2f}",
            sender=author.msisdn,
            paid_at=paid_at.replace(tzinfo=NAIROBI).isoformat(),
        )

    # --- blocks ----------------------------------------------------------------------------
    def block(self, at: dt.datetime, *messages: Message) -> None:
        offset = 0
        for m in messages:
            if m.offset:
                offset += m.offset
            m.offset = offset
        self.blocks.append(Block(at, list(messages), self.session))

    def msg(self, author, text, kind, category="", truth=None, gap=0, related=None) -> Message:
        return Message(
            at=dt.datetime.min,
            author=author,
            text=text,
            kind=kind,
            category=category,
            truth=[t.id for t in truth or []],
            related=[t.id for t in related or []],
            offset=gap,
        )

    def business_reply(self, at: dt.datetime, text: str) -> None:
        author = self.business[0] if self.rng.random() < 0.6 else self.business[1]
        self.block(at + dt.timedelta(seconds=self.rng.randint(60, 600)), self.msg(author, text, "business"))

    def reply_received(
        self, at, code_shown: str | None, recipient: str | None, price: Decimal | None
    ) -> None:
        if self.rng.random() > 0.7:
            return
        bundle = self.bundle_text(price) if price else "bundles"
        options = ["Received, loading now 👍", "Done ✅", "Asante! Tunaweka sasa 🙏"]
        if code_shown:
            options += [
                f"Received {code_shown}, loading now",
                f"Tumepokea {code_shown} ✅ tunaweka sasa",
                f"{code_shown} confirmed ✅ {bundle} sent to {self.number_text(recipient)}"
                if recipient
                else "Done",
            ]
        if recipient:
            options += [
                f"Done ✅ {bundle} imeingia {self.number_text(recipient)}",
                f"Asante! {bundle} loaded to {self.number_text(recipient)} 🙏",
            ]
        self.business_reply(at, self.rng.choice(options))

    # --- scenarios -------------------------------------------------------------------------
    def scenario(self, name: str, at: dt.datetime, tags: list[str]) -> None:
        self.session += 1
        first = len(self.truth)
        getattr(self, "s_" + name)(at)
        for item in self.truth[first:]:
            item.tags.extend(tags)

    def _report_plain(self, at, category, how, with_reply=True):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        item = self.verified(category, code, author.phone, price, author, paid)
        c = self.code_text(code, how)
        template = self.rng.choice(REPORT_NO_NUMBER)
        text = self.fill(
            template, c=c, a=self.amount_text(price), b=self.bundle_text(price), g=self.greeting(at)
        )
        messages = []
        if self.rng.random() < 0.1:
            messages.append(self.msg(author, self.rng.choice(GREETINGS_ALONE), "chatter"))
        if self.rng.random() < 0.08:
            messages.append(self.msg(author, self.media_text(), "media", gap=self.rng.randint(5, 40)))
        report = self.msg(author, text, "report", category, [item], gap=self.rng.randint(5, 60))
        report.edited = self.rng.random() < 0.02
        messages.append(report)
        self.block(at, *messages)
        if self.rng.random() < 0.05:  # a reminder with the same code: the same claim, no new item
            self.block(
                at + dt.timedelta(minutes=self.rng.randint(15, 50)),
                self.msg(author, self.fill(self.rng.choice(REMINDERS), c=c), "followup", category),
            )
            item.tags.append("reminder")
        if with_reply:
            self.reply_received(at, code if self.rng.random() < 0.5 else None, author.phone, price)
        return item

    def s_whole(self, at):
        self._report_plain(at, "whole", "whole")

    def s_lower(self, at):
        self._report_plain(at, "lower", "lower")

    def s_capitalised(self, at):
        self._report_plain(at, "capitalised", "capitalised")

    def s_grouped(self, at):
        self._report_plain(at, "grouped", "grouped")

    def s_digit_tail(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.new_code(paid.date(), digit_tail=True)
        self.receipt(paid, price, author, code=code)
        item = self.verified("digit_tail", code, author.phone, price, author, paid)
        text = self.fill(
            self.rng.choice(REPORT_NO_NUMBER),
            c=self.code_text(code, "digit_tail"),
            a=self.amount_text(price),
            b=self.bundle_text(price),
            g=self.greeting(at),
        )
        self.block(at, self.msg(author, text, "report", "digit_tail", [item]))
        self.reply_received(at, code, author.phone, price)

    def s_split_lines(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        item = self.verified("split_lines", code, author.phone, price, author, paid)
        cut = self.rng.randint(3, 7)
        shown = code if self.rng.random() < 0.8 else code.lower()
        text = self.fill(
            self.rng.choice(SPLIT_LINES), p1=shown[:cut], p2=shown[cut:], a=self.amount_text(price)
        )
        self.block(at, self.msg(author, text, "report", "split_lines", [item]))
        self.reply_received(at, code, author.phone, price)

    def s_split_messages(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        item = self.verified("split_messages", code, author.phone, price, author, paid)
        cut = self.rng.randint(3, 7)
        first, second = self.rng.choice(SPLIT_MESSAGES)
        self.block(
            at,
            self.msg(author, self.fill(first, p1=code[:cut]), "report", "split_messages"),
            self.msg(
                author,
                self.fill(second, p2=code[cut:]),
                "report",
                "split_messages",
                [item],
                gap=self.rng.randint(3, 25),
            ),
        )
        self.reply_received(at, code, author.phone, price)

    def s_number_in_message(self, at, category="number_in_message", author=None):
        author = author or self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        own = author.kind == "number" and self.rng.random() < 0.1
        recipient = author.phone if own else self.new_phone()
        item = self.verified(category, code, recipient, price, author, paid)
        how = _pick(self.rng, [(70, "whole"), (10, "lower"), (20, "grouped")])
        text = self.fill(
            self.rng.choice(REPORT_WITH_NUMBER),
            c=self.code_text(code, how),
            n=self.number_text(recipient),
            a=self.amount_text(price),
            b=self.bundle_text(price),
            g=self.greeting(at),
        )
        self.block(at, self.msg(author, text, "report", category, [item]))
        self.reply_received(at, code, recipient, price)

    def s_saved_contact(self, at):
        kind = "tilde" if self.style == "ios" and self.rng.random() < 0.4 else "saved"
        self.s_number_in_message(at, "saved_contact", author=self.customer(at, kind))

    def s_context_before(self, at):
        author = self.customer(at, "saved" if self.rng.random() < 0.15 else "number")
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        recipient = self.new_phone()
        item = self.verified("context_before", code, recipient, price, author, paid)
        gap = self.rng.randint(30, 240)
        first = self.fill(
            self.rng.choice(CONTEXT_NUMBER), n=self.number_text(recipient), b=self.bundle_text(price)
        )
        second = self.fill(
            self.rng.choice(CONTEXT_CODE),
            c=self.code_text(code, _pick(self.rng, [(80, "whole"), (20, "grouped")])),
        )
        self.block(
            at - dt.timedelta(seconds=gap),
            self.msg(author, first, "context", "context_before", related=[item]),
        )
        self.block(at, self.msg(author, second, "report", "context_before", [item]))
        self.reply_received(at, code, recipient, price)

    def s_context_after(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        recipient = self.new_phone()
        item = self.verified("context_after", code, recipient, price, author, paid)
        first = self.fill(self.rng.choice(CONTEXT_CODE), c=code)
        second = self.fill(self.rng.choice(CONTEXT_AFTER), n=self.number_text(recipient))
        self.block(at, self.msg(author, first, "report", "context_after", [item]))
        self.block(
            at + dt.timedelta(seconds=self.rng.randint(10, 120)),
            self.msg(author, second, "context", "context_after", related=[item]),
        )
        self.reply_received(at + dt.timedelta(minutes=2), code, recipient, price)

    def s_payer_and_target(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        payer = self.new_phone()
        code = self.receipt(paid, price, Author("", payer, payer, "number"))
        recipient = self.new_phone()
        item = self.verified("payer_and_target", code, recipient, price, author, paid)
        text = self.fill(
            self.rng.choice(PAYER_AND_TARGET),
            c=code,
            p=self.number_text(payer),
            n=self.number_text(recipient),
            b=self.bundle_text(price),
        )
        self.block(at, self.msg(author, text, "report", "payer_and_target", [item]))
        self.reply_received(at, code, recipient, price)

    def s_two_codes(self, at):
        author = self.customer(at)
        paid = self.paid_before(at)
        prices = [self.price(), self.price()]
        codes = [self.receipt(paid - dt.timedelta(seconds=70 * i), p, author) for i, p in enumerate(prices)]
        same = self.rng.random() < 0.4
        recipients = [self.new_phone()] * 2 if same else [self.new_phone(), self.new_phone()]
        items = [
            self.verified("two_codes", c, r, p, author, paid - dt.timedelta(seconds=70 * i))
            for i, (c, r, p) in enumerate(zip(codes, recipients, prices, strict=True))
        ]
        if same:
            text = self.fill(
                self.rng.choice(
                    ["{c1} na {c2} zote kwa {n}", "{c1} and {c2} for {n}", "Codes: {c1}, {c2}\nNumber {n}"]
                ),
                c1=codes[0],
                c2=codes[1],
                n=self.number_text(recipients[0]),
            )
        else:
            text = self.fill(
                self.rng.choice(
                    [
                        "{c1} for {n1}\n{c2} for {n2}",
                        "{c1} - {n1}\n{c2} - {n2}",
                        "{c1} weka kwa {n1}, {c2} weka kwa {n2}",
                    ]
                ),
                c1=codes[0],
                c2=codes[1],
                n1=self.number_text(recipients[0]),
                n2=self.number_text(recipients[1]),
            )
        self.block(at, self.msg(author, text, "report", "two_codes", items))
        self.reply_received(at, None, None, None)

    def s_sms_paste(self, at, with_number=False, category="sms_paste"):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        recipient = self.new_phone() if with_number else author.phone
        item = self.verified(category, code, recipient, price, author, paid)
        payee = self.our_name()
        if payee != TILL_NAME:
            item.tags.append("our_name_variant")
        sms = self.customer_sms(code, price, payee, paid)
        if with_number:
            template = self.rng.choice(SMS_WITH_NUMBER)
            text = self.fill(template, n=self.number_text(recipient), sms=sms)
        else:
            text = self.fill(self.rng.choice(SMS_FRAMES), sms=sms)
        self.block(at, self.msg(author, text, "report", category, [item]))
        self.reply_received(at, code, recipient, price)

    def s_sms_paste_number(self, at):
        self.s_sms_paste(at, with_number=True, category="sms_paste_number")

    def s_other_merchant(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, None)  # one of our receipts, never claimed by its payer here
        self.item(
            "other_merchant",
            OTHER_MERCHANT,
            code,
            sender=author.msisdn,
            paid_at=paid.replace(tzinfo=NAIROBI).isoformat(),
        )
        sms = self.customer_sms(code, price, self.rng.choice(OTHER_MERCHANTS), paid)
        text = self.fill(self.rng.choice(SMS_FRAMES), sms=sms)
        self.block(at, self.msg(author, text, "report", "other_merchant", [self.truth[-1]]))
        self.business_reply(at, "Hii SMS si ya till yetu. Tafadhali lipa Till 6944804 (TILLBOOK DATA).")

    def s_correction(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at - dt.timedelta(minutes=8))
        code = self.receipt(paid, price, author)
        wrong = self.typo_of(code)
        with_number = self.rng.random() < 0.35
        recipient = self.new_phone() if with_number else author.phone
        early = self.item("correction", SUPERSEDED, wrong, sender=author.msisdn)
        item = self.verified("correction", code, recipient, price, author, paid)
        gap = self.rng.randint(60, 420)
        if with_number:
            first = self.fill(
                self.rng.choice(REPORT_WITH_NUMBER),
                c=wrong,
                n=self.number_text(recipient),
                a=self.amount_text(price),
                b=self.bundle_text(price),
                g="",
            )
        else:
            first = self.fill(
                self.rng.choice(REPORT_NO_NUMBER),
                c=wrong,
                a=self.amount_text(price),
                b=self.bundle_text(price),
                g="",
            )
        second = self.fill(self.rng.choice(CORRECTIONS), c=code if self.rng.random() < 0.85 else code.lower())
        self.block(at - dt.timedelta(seconds=gap), self.msg(author, first, "report", "correction", [early]))
        self.block(at, self.msg(author, second, "report", "correction", [item]))
        self.reply_received(at, code, recipient, price)

    def s_duplicate(self, at):
        first = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, first)
        item = self.verified("duplicate", code, first.phone, price, first, paid)
        pasted = self.rng.random() < 0.5
        sms = self.customer_sms(code, price, TILL_NAME, paid)
        text = (
            self.fill(self.rng.choice(SMS_FRAMES), sms=sms)
            if pasted
            else self.fill(
                self.rng.choice(REPORT_NO_NUMBER),
                c=code,
                a=self.amount_text(price),
                b=self.bundle_text(price),
                g=self.greeting(at),
            )
        )
        self.block(at, self.msg(first, text, "report", "duplicate", [item]))
        self.reply_received(at, code, first.phone, price)
        later = at + dt.timedelta(minutes=self.rng.randint(20, 300))
        second = self.customer(later)
        dup = self.item("duplicate", CODE_ALREADY_USED, code, sender=second.msisdn)
        text2 = (
            self.fill(self.rng.choice(SMS_FRAMES), sms=sms)
            if pasted
            else self.fill(
                self.rng.choice(REPORT_NO_NUMBER),
                c=self.code_text(code, self.rng.choice(["whole", "lower", "grouped"])),
                a=self.amount_text(price),
                b=self.bundle_text(price),
                g=self.greeting(later),
            )
        )
        self.session += 1
        self.block(later, self.msg(second, text2, "report", "duplicate", [dup]))
        if self.rng.random() < 0.7:
            self.business_reply(
                later,
                self.rng.choice(
                    [
                        f"Code {code} imeshatumika.",
                        f"Code {code} has already been used. Tafadhali tuma code yako.",
                    ]
                ),
            )

    def s_amount_mismatch(self, at):
        author = self.customer(at)
        amount = self.rng.choice(tuple(NOT_BUNDLE_AMOUNTS))
        assert amount not in self.prices
        paid = self.paid_before(at)
        code = self.receipt(paid, amount, author)
        self.item(
            "amount_mismatch",
            AMOUNT_MISMATCH,
            code,
            sender=author.msisdn,
            paid_at=paid.replace(tzinfo=NAIROBI).isoformat(),
        )
        if self.rng.random() < 0.3:
            text = self.fill(
                self.rng.choice(SMS_FRAMES), sms=self.customer_sms(code, amount, TILL_NAME, paid)
            )
        else:
            text = self.fill(
                self.rng.choice(REPORT_NO_NUMBER),
                c=code,
                a=self.amount_text(amount),
                b=self.bundle_text(self.price()),
                g=self.greeting(at),
            )
        self.block(at, self.msg(author, text, "report", "amount_mismatch", [self.truth[-1]]))
        if self.rng.random() < 0.6:
            self.business_reply(at, f"Umetuma {int(amount)}, hakuna bundle ya bei hiyo. Tutakupigia 🙏")

    def s_sms_amount_altered(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.receipt(paid, price, author)
        claimed = self.rng.choice([p for p in self.prices if p != price])
        self.item(
            "sms_amount_altered",
            AMOUNT_MISMATCH,
            code,
            sender=author.msisdn,
            paid_at=paid.replace(tzinfo=NAIROBI).isoformat(),
        )
        sms = self.customer_sms(code, claimed, TILL_NAME, paid)
        text = self.fill(self.rng.choice(SMS_FRAMES), sms=sms)
        self.block(at, self.msg(author, text, "report", "sms_amount_altered", [self.truth[-1]]))

    def s_unknown_code(self, at):
        author = self.customer(at)
        price = self.price()
        paid = self.paid_before(at)
        code = self.new_code(paid.date())  # paid elsewhere, or never: not on our statement
        self.item("unknown_code", UNKNOWN_CODE, code, sender=author.msisdn)
        how = _pick(self.rng, [(70, "whole"), (15, "lower"), (15, "grouped")])
        text = self.fill(
            self.rng.choice(REPORT_NO_NUMBER),
            c=self.code_text(code, how),
            a=self.amount_text(price),
            b=self.bundle_text(price),
            g=self.greeting(at),
        )
        self.block(at, self.msg(author, text, "report", "unknown_code", [self.truth[-1]]))
        if self.rng.random() < 0.7:
            self.business_reply(
                at,
                self.rng.choice(
                    [
                        f"Hatujaona code {code} kwa till yetu. Tafadhali confirm code.",
                        f"We can't find {code} on our till, please check the code 🙏",
                    ]
                ),
            )

    def s_unparseable(self, at):
        author = self.customer(at)
        price = self.price()
        if self.rng.random() < 0.7:  # the payment happened; its code is just not in the chat
            self.receipt(self.paid_before(at), price, author)
        item = self.item("unparseable", UNPARSEABLE, "", sender=author.msisdn)
        template = self.rng.choice(UNPARSEABLE_TEXTS)
        messages = []
        if "attached" in template or "screenshot" in template:
            messages.append(self.msg(author, self.media_text(), "media"))
        text = self.fill(template, a=self.amount_text(price), b=self.bundle_text(price))
        messages.append(self.msg(author, text, "report", "unparseable", [item], gap=self.rng.randint(3, 30)))
        self.block(at, *messages)
        if self.rng.random() < 0.7:
            self.business_reply(
                at,
                self.rng.choice(
                    [
                        "Tafadhali tuma M-Pesa code (mfano UAB1CD2EFG) na namba ya kuweka.",
                        "Please send the M-Pesa code, the screenshot did not come through.",
                        "Tuma code ya M-Pesa tafadhali 🙏",
                    ]
                ),
            )

    # --- other traffic ---------------------------------------------------------------------
    def media_text(self) -> str:
        if self.style == "ios":
            return "\u200e" + self.rng.choice(
                ["image omitted", "image omitted", "sticker omitted", "audio omitted"]
            )
        return "<Media omitted>"

    def chatter(self, at: dt.datetime) -> None:
        self.session += 1
        author = self.customer(at, "saved" if self.rng.random() < 0.2 else "number")
        kind = _pick(self.rng, [(50, "greeting"), (30, "question"), (10, "deleted"), (10, "sticker")])
        if kind == "greeting":
            self.block(at, self.msg(author, self.fill(self.rng.choice(CHATTER)), "chatter", "chatter"))
        elif kind == "question":
            question, answer = self.rng.choice(QUESTIONS)
            self.block(at, self.msg(author, self.fill(question), "chatter", "chatter_question"))
            self.business_reply(at, answer)
        elif kind == "deleted":
            text = "\u200eThis message was deleted." if self.style == "ios" else "This message was deleted"
            self.block(at, self.msg(author, text, "deleted"))
        else:
            self.block(at, self.msg(author, self.media_text(), "media"))

    def broadcast(self, at: dt.datetime) -> None:
        self.session += 1
        author = self.business[0] if self.rng.random() < 0.6 else self.business[1]
        self.block(at, self.msg(author, self.rng.choice(BROADCASTS), "business"))

    def join(self, at: dt.datetime) -> None:
        self.session += 1
        who = self.customer(at)
        if self.style == "ios":
            self.block(
                at, self.msg(who, f"\u200e{who.label} joined using this group's invite link", "system")
            )
        else:
            self.block(at, self.msg(None, f"{who.label} joined using this group's invite link", "system"))

    def unclaimed_receipt(self, at: dt.datetime) -> None:
        self.receipt(at, self.price(), None)


# ---------------------------------------------------------------------------------------------
# Text pools (Swahili, English, Sheng; {c} code, {n} number, {a} amount, {b} bundle, {g} greeting,
# {e} emoji)
# ---------------------------------------------------------------------------------------------
REPORT_NO_NUMBER = (
    "{c}",
    "{c} {e}",
    "{g}{c}",
    "Nimelipa {a}. Code {c}",
    "nimelipa {a} ya {b}, code ni {c}",
    "Paid {a} for {b}. Code: {c}",
    "{g}I have paid {a} for {b}. Mpesa code {c}",
    "Nimetuma {a} kwa till. {c}",
    "Sasa boss, nimetuma doh. Code: {c}",
    "mpesa code {c} pls load",
    "code: {c} {e}",
    "{c} {b} please",
    "Nataka {b}. Nimelipa, code {c}",
    "Transaction code {c}",
    "{c}\nNimelipa {a}",
    "Confirm {c} please",
    "Hii ndio code {c} {e}",
    "Nimenunua {b} code {c}, nitumie tafadhali",
    "Bro nimepay, {c}",
    "{g}\n{c}\n{b}",
    "Nimelipa {b} 👉 {c}",
)
REPORT_WITH_NUMBER = (
    "{c} for {n}",
    "{c} weka kwa {n}",
    "Load {n} please. Code {c}",
    "Nimelipa {a}, code {c}. Number ni {n}",
    "{c}\n{n}",
    "Recipient Number: {n}\nM-Pesa Code: {c}",
    "tuma {b} kwa {n} {c}",
    "{c} {n} {b}",
    "{g}paid {a} for {b} to {n}, code {c}",
    "{b} kwa {n}. Mpesa: {c} {e}",
    "Naomba {b} kwa hii namba {n}\nCode: {c}",
    "{n}\n{c}",
    "Weka kwa {n} {e}\n{c}",
)
CONTEXT_NUMBER = (
    "Weka kwa {n}",
    "load {n} please",
    "Naomba {b} kwa {n}",
    "Number: {n}",
    "For {n} {e}",
    "Namba ni {n}",
    "Nitumie {b} kwa {n}",
    "Ni ya {n}",
)
CONTEXT_CODE = ("{c}", "code {c}", "Hii hapa {c}", "{c} {e}", "Mpesa code: {c}")
CONTEXT_AFTER = ("for {n} pls", "weka kwa {n}", "ni ya {n}", "Namba: {n} {e}", "load {n}")
PAYER_AND_TARGET = (
    "Nimelipa na {p}, weka {b} kwa {n}. Code {c}",
    "paid from {p}, load {n} please. {c}",
    "{c}\nPaid with {p}\nLoad {n}",
    "My number is {p} but weka kwa {n} ({c})",
)
SPLIT_LINES = (
    "Mpesa code: {p1}\n{p2}",
    "{p1}\n{p2}",
    "code {p1}\n{p2} 🙏",
    "Nimelipa {a}, code {p1}\n{p2}",
)
SPLIT_MESSAGES = (("{p1}", "{p2}"), ("code {p1}", "{p2}"), ("Mpesa: {p1}", "{p2}"), ("{p1}", "{p2} {e}"))
SMS_FRAMES = (
    "{sms}",
    "{sms}",
    "{sms}",
    "Hii hapa\n{sms}",
    "{sms} {e}",
    "Habari\n\n{sms}",
    "Nimelipa 👇\n{sms}",
)
SMS_WITH_NUMBER = ("{sms}\n{n}", "{sms}\nWeka kwa {n}", "{sms}\nfor {n} please", "Load {n}\n{sms}")
CORRECTIONS = (
    "sorry, correct code is {c}",
    "Samahani, code sahihi ni {c}",
    "Nimekosea code. Ni {c}",
    "Wrong code, this one: {c}",
    "*{c}",
    "Sorry the right one is {c} {e}",
    "Pole, hii ndio code: {c}",
)
REMINDERS = ("Bado sijapata 😢 {c}", "Boss, {c} bado", "Still waiting, code {c}", "Mbona sijapata? {c}")
UNPARSEABLE_TEXTS = (
    "nimelipa {a} lakini code imepotea",
    "paid, code attached",
    "Nimetuma pesa, sijapata message ya mpesa",
    "I have paid {a} for {b} but the mpesa sms got deleted",
    "nimelipa kwa till lakini sioni code {e}",
    "Paid already. Check kwa till please",
    "Nimelipa {b} asubuhi, code ni kwa screenshot",
    "Nimetuma {a} kwa till yenu, mpesa message haijafika",
)
GREETINGS_ALONE = ("Hi", "Habari", "Sasa", "Niaje boss", "Hello 👋", "Mambo")
CHATTER = (
    "Hi",
    "Habari",
    "Mambo vipi",
    "Asante sana 🙏",
    "Thanks, received 👍",
    "Poa",
    "Nimepata, asante",
    "Bundles zimeingia ✅ asanteni",
    "Good morning everyone",
    "🙏🙏",
    "Ok",
    "Sawa",
    "Fiti sana, thanks",
    "Uko sure itaingia leo?",
    "Mnafunga saa ngapi?",
)
QUESTIONS = (
    ("how much is 2GB?", "2GB ni 150 kwa siku. Lipa Till 6944804."),
    ("Mnauza 5GB ngapi?", "Daily 5GB ni 250 👍"),
    ("Till number ni gani?", "Till 6944804 (TILLBOOK DATA)"),
    ("Kuna monthly?", "Ndio: Monthly 25GB 1500, Monthly 50GB 2500."),
    ("Hi, do you have weekly bundles?", "Yes: Weekly 8.75GB @500, Weekly 15GB @750."),
    ("Naweza nunua kwa namba nyingine?", "Ndio, tuma code na namba ya kuweka."),
)
BROADCASTS = (
    "📢 Bei za leo:\nDaily 2GB - 150\nDaily 5GB - 250\nWeekly 8.75GB - 500\nWeekly 15GB - 750\n"
    "Monthly 25GB - 1500\nMonthly 50GB - 2500\n"
    "Lipa Till 6944804 (TILLBOOK DATA) kisha tuma M-Pesa code na namba.",
    "Good morning! Tuko open. Lipa Till 6944804 then send the M-Pesa code here 🙏",
    "Karibu! Ukilipa, tuma M-Pesa code na namba ya kuweka. Mfano: UAB1CD2EFG kwa 0712 345 678",
    "Samahani kwa delay, system iko slow kidogo. Bundles zote zitaingia 🙏",
)


# ---------------------------------------------------------------------------------------------
# Placing, rendering
# ---------------------------------------------------------------------------------------------
def _session_time(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A moment in [start, end], busy in the day and evening, quiet at night."""
    weights = [0.15] * 6 + [0.8, 1.2, 1.6] + [2.0] * 12 + [1.4, 0.9, 0.5]
    span = (end - start).total_seconds()
    while True:
        at = start + dt.timedelta(seconds=rng.uniform(0, span))
        if rng.uniform(0, 2.0) < weights[at.hour]:
            return at.replace(microsecond=0)


def _place(blocks: list[Block], rng: random.Random) -> list[Message]:
    """Give every message its time: blocks keep their messages together, a session's blocks
    keep their order and gaps (only ever pushed later), and the chat stays chronological."""
    delay: dict[int, dt.timedelta] = {}
    out: list[Message] = []
    last = dt.datetime.min
    for block in sorted(blocks, key=lambda b: (b.at, b.session)):
        at = block.at + delay.get(block.session, dt.timedelta())
        if at <= last:
            at = last + dt.timedelta(seconds=rng.randint(2, 20))
        delay[block.session] = at - block.at
        for m in block.messages:
            m.at = at + dt.timedelta(seconds=m.offset)
            out.append(m)
        last = out[-1].at
    return out


def _render(messages: list[Message], stamp: Stamp, start: dt.datetime) -> bytes:
    lines = []
    opening = start - dt.timedelta(minutes=47)
    notice = (
        "Messages and calls are end-to-end encrypted. "
        "No one outside of this chat, not even WhatsApp, can read or listen to them."
    )
    if stamp.style == "ios":
        lines.append(f"{stamp.render(opening)}{GROUP_NAME}: {notice}")
        lines.append(f"\u200e{stamp.render(opening)}{GROUP_NAME}: \u200eYou created this group")
    else:
        lines.append(f"{stamp.render(opening)}{notice} Tap to learn more.")
        lines.append(f'{stamp.render(opening)}You created group "{GROUP_NAME}"')
    for m in messages:
        head = stamp.render(m.at)
        marked = stamp.style == "ios" and m.text.startswith("\u200e")
        text = m.text
        if m.edited:
            text += (
                " \u200e<This message was edited>" if stamp.style == "ios" else " <This message was edited>"
            )
        if m.author is None:
            lines.append(f"{head}{text}")
        else:
            lines.append(f"{chr(0x200E) if marked else ''}{head}{m.author.label}: {text}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _statement(receipts: list[Receipt], rng: random.Random, start: dt.datetime, end: dt.datetime) -> bytes:
    """The Org-portal CSV (formats doc §4.1): preamble, header, newest row first. Each receipt
    is a Completed "Merchant Payment" row (payer masked), followed above 200 by its "Pay merchant
    Charge" row reusing the receipt number; once a day the balance is swept to the settlement
    account."""
    fmt = "%Y-%m-%d %H:%M:%S" if rng.random() < 0.3 else "%d-%m-%Y %H:%M:%S"
    used = {r.code for r in receipts}
    events: list[tuple[dt.datetime, int, str, Receipt | None]] = []
    for r in receipts:
        events.append((r.paid_at, 0, r.code, r))
        if r.amount > 200:
            events.append((r.paid_at, 1, r.code, r))
    day = start.date()
    while day <= end.date():
        at = dt.datetime.combine(day, dt.time(18, 0, rng.randint(0, 59)))
        if start <= at <= end:
            while True:
                code = code_prefix(day) + rng.choice("123456789")
                code += "".join(rng.choice(_CODE_ALPHABET) for _ in range(6))
                if code not in used:
                    used.add(code)
                    break
            events.append((at, 2, code, None))
        day += dt.timedelta(days=1)
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    party = f"{TILL_NUMBER} - {TILL_NAME}"
    balance = Decimal(rng.randrange(1000, 20000))
    rows = []
    for at, kind, code, r in events:
        completed = at.strftime(fmt)
        if kind == 0:
            local = "0" + r.payer[3:]
            initiated = (at - dt.timedelta(seconds=rng.randint(1, 6))).strftime(fmt)
            balance += r.amount
            details = f"Merchant Payment from {local[:4]}***{local[-3:]} - {r.payer_name}"
            paid_in, withdrawn, reason = f"{r.amount:.2f}", "", "Customer Merchant Payment"
        elif kind == 1:
            initiated = completed
            charge = (r.amount * Decimal("0.0055")).quantize(Decimal("0.01"))
            balance -= charge
            details, paid_in, withdrawn, reason = (
                "Pay merchant Charge",
                "",
                f"{charge:.2f}",
                "Pay Merchant Charge",
            )
        else:
            if balance <= 1000:
                continue
            initiated = completed
            sweep = balance - Decimal(500)
            balance -= sweep
            details = "Merchant Account to Organization Settlement Account"
            paid_in, withdrawn, reason = "", f"{sweep:.2f}", "Business Buy Goods Settlement"
        rows.append(
            [
                code,
                completed,
                initiated,
                details,
                "Completed",
                paid_in,
                withdrawn,
                _money(balance),
                "TRUE",
                reason,
                party,
                "",
                "",
            ]
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Organisation Name:", ORG_NAME])
    writer.writerow(["Organisation Short Code:", TILL_NUMBER])
    writer.writerow(["Time Period:", f"{start:%d-%m-%Y} - {end:%d-%m-%Y}"])
    writer.writerow([])
    writer.writerow(STATEMENT_COLUMNS)
    writer.writerows(reversed(rows))  # the portal lists the newest first
    return buffer.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------
def generate(
    seed: int,
    *,
    style: str = "android",
    date_order: str = "dmy",
    clock: str = "24h",
    n_claims: int = 600,
    start: dt.datetime | None = None,
    days: float | None = None,
) -> Corpus:
    """One chat export and its statement, with the truth (see the module docstring).

    ``n_claims`` is about how many payment reports the chat holds; ``start`` (Nairobi time,
    naive or aware) is when it begins, and it runs ``days`` (by default about 170 reports a
    day, so the span crosses at least one midnight). Every midnight in the span has a few
    payments made just before it and reported just after.
    """
    if style not in STYLES or date_order not in DATE_ORDERS or clock not in CLOCKS:
        raise ValueError(f"style {style!r}, date_order {date_order!r}, clock {clock!r}")
    rng = random.Random(seed)
    start = start or dt.datetime(2026, 11, 27, 3, 0)
    if start.tzinfo is not None:
        start = start.astimezone(NAIROBI).replace(tzinfo=None)
    days = days if days is not None else max(1.2, n_claims / 150)
    end = start + dt.timedelta(days=days)
    variant = rng.randrange(2)
    stamp = Stamp(style, date_order, clock, variant, nnbsp=rng.random() < 0.85)
    b = _Builder(rng, style, start, end)

    # Payments made just before each midnight and reported just after it.
    midnight = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time())
    planned: list[tuple[dt.datetime, str, list[str]]] = []
    while midnight < end - dt.timedelta(minutes=20):
        for i in range(3):
            name = MIDNIGHT_SCENARIOS[i % len(MIDNIGHT_SCENARIOS)]
            tags = ["midnight"] + (["month_end"] if midnight.day == 1 else [])
            planned.append((midnight + dt.timedelta(seconds=rng.randint(150, 600)), "midnight:" + name, tags))
        midnight += dt.timedelta(days=1)
    names = [n for n, _ in SCENARIOS]
    weights = [w for _, w in SCENARIOS]
    per_item = {"two_codes": 2, "correction": 2, "duplicate": 2}
    expected_items = sum(per_item.get(p[1].split(":")[-1], 1) for p in planned)
    while expected_items < n_claims:
        name = rng.choices(names, weights=weights)[0]
        planned.append((_session_time(rng, start + dt.timedelta(minutes=20), end), name, []))
        expected_items += per_item.get(name, 1)
    planned.sort(key=lambda p: p[0])
    for at, name, tags in planned:
        if name.startswith("midnight:"):
            # Paid a few minutes before midnight (the code carries that day), reported after it.
            midnight = dt.datetime.combine(at.date(), dt.time())
            b.force_paid = midnight - dt.timedelta(seconds=rng.randint(60, 600))
            name = name.split(":")[1]
        b.scenario(name, at, tags)

    for _ in range(int(n_claims * 0.45)):
        b.chatter(_session_time(rng, start, end))
    for _ in range(max(2, int(days * 3))):
        b.broadcast(_session_time(rng, start, end))
    for _ in range(max(3, n_claims // 40)):
        b.join(_session_time(rng, start, end))
    for _ in range(max(2, n_claims // 25)):
        b.unclaimed_receipt(_session_time(rng, start, end))

    messages = _place(b.blocks, rng)
    for item in b.truth:
        report = [m for m in messages if item.id in m.truth]
        if len(report) != 1:
            raise AssertionError(f"truth item {item.id} has {len(report)} report messages")
        m = report[0]
        item.author = m.author.label
        item.sent_at = stamp.shown(m.at).replace(tzinfo=NAIROBI).isoformat()
        item.text = m.text
    corpus = Corpus(
        seed=seed,
        style=style,
        date_order=date_order,
        clock=clock,
        chat_bytes=_render(messages, stamp, start),
        chat_filename="_chat.txt" if style == "ios" else f"WhatsApp Chat with {GROUP_NAME}.txt",
        statement_bytes=_statement(b.receipts, rng, start - dt.timedelta(hours=4), end),
        statement_filename=f"ORG_{TILL_NUMBER}_Statement_{start:%Y%m%d}.csv",
        truth=b.truth,
        messages=messages,
        receipts=b.receipts,
        stamp_format=stamp.sample,
    )
    check(corpus)
    return corpus


# ---------------------------------------------------------------------------------------------
# Self-check of the truth (independent of the product's parsers)
# ---------------------------------------------------------------------------------------------
def check(corpus: Corpus) -> None:
    """Raise AssertionError when the truth contradicts itself or the statement."""
    prices = bundle_prices()
    receipts = {r.code: r for r in corpus.receipts}
    if len(receipts) != len(corpus.receipts):
        raise AssertionError("a receipt code repeats")
    keys: dict[str, str] = {}
    codes = set(receipts) | {t.code for t in corpus.truth if t.code}
    for code in sorted(codes):
        if len(code) != 10 or not code.isalnum() or code != code.upper():
            raise AssertionError(f"bad code {code!r}")
        key = lookalike_key(code)
        if keys.setdefault(key, code) != code:
            raise AssertionError(f"{code} and {keys[key]} are look-alikes")
    verified_codes: dict[str, int] = {}
    for t in corpus.truth:
        sent = dt.datetime.fromisoformat(t.sent_at).replace(tzinfo=None)
        if t.code:
            lag = (sent.date() - code_date(t.code)).days
            if not 0 <= lag <= 1:
                raise AssertionError(f"{t.code}: code date {code_date(t.code)} vs report {sent}")
        if t.sender is not None and not is_kenyan_mobile(t.sender):
            raise AssertionError(f"bad sender {t.sender}")
        if t.expected == VERIFIED:
            verified_codes[t.code] = verified_codes.get(t.code, 0) + 1
            r = receipts.get(t.code)
            if r is None or f"{r.amount:.2f}" != t.price or Decimal(t.price) not in prices:
                raise AssertionError(f"{t.code}: verified but receipt {r} / price {t.price}")
            if not is_kenyan_mobile(t.recipient or "") or t.recipient == SUPPORT_MSISDN:
                raise AssertionError(f"{t.code}: bad recipient {t.recipient}")
            if r.paid_at > sent + dt.timedelta(seconds=59) or code_date(t.code) != r.paid_at.date():
                raise AssertionError(f"{t.code}: paid {r.paid_at}, reported {sent}")
        elif t.expected in (UNKNOWN_CODE, SUPERSEDED):
            if t.code in receipts:
                raise AssertionError(f"{t.code}: expected {t.expected} but it is on the statement")
        elif t.expected in (AMOUNT_MISMATCH, OTHER_MERCHANT, CODE_ALREADY_USED):
            if t.code not in receipts:
                raise AssertionError(f"{t.code}: expected {t.expected} but not on the statement")
            if t.category == "amount_mismatch" and receipts[t.code].amount in prices:
                raise AssertionError(f"{t.code}: amount mismatch with a bundle price")
        elif t.expected == UNPARSEABLE and (t.code or t.sender is None):
            raise AssertionError("an unparseable report needs a sender and no code")
    if any(n > 1 for n in verified_codes.values()):
        raise AssertionError("a code is expected verified twice")
    # Context numbers are close to their report; business and chatter name no truth item.
    reports = {i: m for m in corpus.messages for i in m.truth}
    for m in corpus.messages:
        if m.kind in ("business", "chatter") and m.truth:
            raise AssertionError("business/chatter message carries truth")
        for i in m.related:
            gap = abs((reports[i].at - m.at).total_seconds())
            if gap > 600 or reports[i].author != m.author:
                raise AssertionError(f"context for {corpus.truth[i].code} is {gap:.0f}s away")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--style", choices=STYLES, default="android")
    parser.add_argument("--date-order", choices=DATE_ORDERS, default="dmy")
    parser.add_argument("--clock", choices=CLOCKS, default="24h")
    parser.add_argument("--n-claims", type=int, default=600)
    parser.add_argument("--start", default="2026-11-27T03:00", help="Nairobi time, ISO (default %(default)s)")
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--out", required=True, help="directory to write into")
    args = parser.parse_args(argv)
    corpus = generate(
        args.seed,
        style=args.style,
        date_order=args.date_order,
        clock=args.clock,
        n_claims=args.n_claims,
        start=dt.datetime.fromisoformat(args.start),
        days=args.days,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / corpus.chat_filename).write_bytes(corpus.chat_bytes)
    if corpus.style == "ios":
        (out / f"WhatsApp Chat - {GROUP_NAME}.zip").write_bytes(corpus.chat_zip())
    (out / corpus.statement_filename).write_bytes(corpus.statement_bytes)
    (out / "truth.json").write_text(corpus.truth_json(), encoding="utf-8")
    print(
        json.dumps(
            {"out": str(out), "stamp": corpus.stamp_format, **corpus.counts()}, ensure_ascii=False, indent=1
        )
    )


if __name__ == "__main__":
    main()
