"""Precision and recall of claims on generated chat exports and statements (chatgen.py).

For several seeds, phone styles, date orders and clocks: import the statement, then the chat
export, run the matcher well after the grace period, and compare every claim with the truth:
- precision: every verified claim has the (code, recipient, price) the truth says; exactly 1.0;
- recall: truth "verified" items verified with the right recipient and price; at least 0.99;
- anomalies: each truth anomaly has a claim with that reason (unparseable: a code-less claim
  for that very message); at least 0.99; corrections leave the earlier claim superseded;
- our own replies and chatter make no claim.
On failure the message holds a per-category table and the misses (code, expected, got, text),
so a developer can see what to fix in the parser or the matcher. CHAT_CORPUS_REPORT=1 prints
the table for passing corpora too; CHAT_CORPUS_MISSES=1000 lists every miss. To look at a corpus:
``python -m tests.reconciliation.chatgen --seed 5 --style ios --out /tmp/x``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from reconciliation.models import Claim, ClaimStatus, TillReceipt
from reconciliation.services import receipts as receipt_svc
from reconciliation.services.claims import whatsapp_import
from reconciliation.services.matcher import claims_reconcile

from . import chatgen

PRECISION = 1.0
RECALL = 0.99
ANOMALY_RATE = 0.99
# Misses listed per kind on failure; CHAT_CORPUS_MISSES=1000 lists them all.
MISSES_SHOWN = int(os.environ.get("CHAT_CORPUS_MISSES", "12"))


def _at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=chatgen.NAIROBI)


# Four ~600-report corpora across month ends (one across New Year), and smaller ones for the
# other date orders and clocks. Every span ends at least a few hours in the past.
CORPORA = [
    pytest.param(11, "android", "dmy", "12h", 600, _at(2026, 11, 27, 1), id="android-dmy-12h-nov30"),
    pytest.param(12, "ios", "dmy", "24h", 600, _at(2026, 10, 28, 6), id="ios-dmy-24h-oct31"),
    pytest.param(13, "android", "dmy", "24h", 600, _at(2025, 12, 28, 8), id="android-dmy-24h-newyear"),
    pytest.param(14, "ios", "dmy", "12h", 600, _at(2026, 9, 27, 5), id="ios-dmy-12h-sep30"),
    pytest.param(21, "android", "iso", "24h", 150, _at(2026, 2, 28, 4), id="android-iso-24h-feb28"),
    pytest.param(22, "ios", "iso", "12h", 150, _at(2026, 6, 30, 3), id="ios-iso-12h-jun30"),
    pytest.param(23, "android", "mdy", "12h", 150, _at(2026, 4, 30, 3), id="android-mdy-12h-apr30"),
    pytest.param(24, "ios", "mdy", "24h", 150, _at(2026, 7, 31, 3), id="ios-mdy-24h-jul31"),
]


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
_MARKS_RE = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACE_RE = re.compile(r"[\s\u00a0\u202f\u2009\u2007]+")
_EDITED_RE = re.compile(r"\s*<This message was edited>\s*$", re.I)


def message_key(sent_at: dt.datetime, text: str) -> tuple[dt.datetime, str]:
    """(instant, text) with invisible marks, spacing and the edited marker ironed out."""
    text = _EDITED_RE.sub("", _MARKS_RE.sub("", text or ""))
    return sent_at.astimezone(dt.UTC), _SPACE_RE.sub(" ", text).strip()


@dataclass(frozen=True)
class Got:
    """One claim as the database has it."""

    id: int
    code: str
    status: str
    reason: str
    sender: str
    recipient: str
    price: str | None
    key: tuple
    text: str

    def short(self) -> str:
        out = self.status + (f"/{self.reason}" if self.reason else "")
        if self.status == ClaimStatus.VERIFIED:
            out += f" for {self.recipient} at {self.price}"
        elif self.recipient:
            out += f" (recipient {self.recipient})"
        return out


@dataclass
class Miss:
    kind: str  # precision | recall | anomaly | superseded | business | chatter | extra
    category: str
    code: str
    expected: str
    got: str
    text: str


@dataclass
class Score:
    label: str
    truth: int = 0
    claims: int = 0
    verified_claims: int = 0
    verified_right: int = 0
    truth_verified: int = 0
    recalled: int = 0
    anomalies: int = 0
    anomalies_found: int = 0
    superseded: int = 0
    superseded_found: int = 0
    business_claims: int = 0
    chatter_claims: int = 0
    extra_claims: int = 0
    per_category: dict = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )  # (cat, expected) -> [n, ok]
    misses: list[Miss] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.verified_right / self.verified_claims if self.verified_claims else 1.0

    @property
    def recall(self) -> float:
        return self.recalled / self.truth_verified if self.truth_verified else 1.0

    @property
    def anomaly_rate(self) -> float:
        return self.anomalies_found / self.anomalies if self.anomalies else 1.0

    def failures(self) -> list[str]:
        out = []
        if self.precision < PRECISION:
            out.append(f"precision {self.precision:.4f} < {PRECISION}")
        if self.recall < RECALL:
            out.append(f"recall {self.recall:.4f} < {RECALL}")
        if self.anomaly_rate < ANOMALY_RATE:
            out.append(f"anomalies found {self.anomaly_rate:.4f} < {ANOMALY_RATE}")
        if self.superseded_found < self.superseded:
            out.append(f"superseded {self.superseded_found}/{self.superseded}")
        if self.business_claims:
            out.append(f"{self.business_claims} claim(s) from our own replies")
        if self.chatter_claims:
            out.append(f"{self.chatter_claims} claim(s) from chatter")
        return out

    def report(self) -> str:
        lines = [
            f"== {self.label}",
            f"truth items {self.truth}, claims {self.claims}; "
            f"precision {self.precision:.4f} ({self.verified_right}/{self.verified_claims}), "
            f"recall {self.recall:.4f} ({self.recalled}/{self.truth_verified}), "
            f"anomalies {self.anomaly_rate:.4f} ({self.anomalies_found}/{self.anomalies}), "
            f"superseded {self.superseded_found}/{self.superseded}, "
            f"claims from business {self.business_claims}, from chatter {self.chatter_claims}, "
            f"other extra claims {self.extra_claims}",
            "timings " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items()),
            *self.notes,
            f"  {'category':<20} {'expected':<18} {'n':>4} {'ok':>4} {'rate':>6}",
        ]
        for (category, expected), (n, ok) in sorted(self.per_category.items()):
            flag = "" if ok == n else "  <--"
            lines.append(f"  {category:<20} {expected:<18} {n:>4} {ok:>4} {ok / n:>6.3f}{flag}")
        by_kind: dict[str, list[Miss]] = defaultdict(list)
        for miss in self.misses:
            by_kind[miss.kind].append(miss)
        for kind, misses in by_kind.items():
            lines.append(f"  -- {kind} misses: {len(misses)} (first {min(len(misses), MISSES_SHOWN)})")
            lines.append(f"     {'category':<18} {'code':<11} {'expected':<34} {'got':<48} text")
            for m in misses[:MISSES_SHOWN]:
                text = m.text.replace("\n", "⏎")
                text = text if len(text) <= 90 else text[:87] + "..."
                lines.append(f"     {m.category:<18} {m.code or '-':<11} {m.expected:<34} {m.got:<48} {text}")
        return "\n".join(lines)


def claims_in_db() -> list[Got]:
    out = []
    for c in Claim.objects.select_related("message", "bundle", "order").order_by("pk"):
        price = c.order.price if c.order_id else (c.bundle.price if c.bundle_id else None)
        out.append(
            Got(
                id=c.pk,
                code=c.code,
                status=c.status,
                reason=c.reason,
                sender=c.sender_msisdn,
                recipient=c.recipient_msisdn,
                price=f"{price:.2f}" if price is not None else None,
                key=message_key(c.message.sent_at, c.message.text),
                text=c.message.text,
            )
        )
    return out


def score(corpus: chatgen.Corpus, got: list[Got], label: str) -> Score:
    s = Score(label=label, truth=len(corpus.truth), claims=len(got))
    stamp_seconds = corpus.style == "ios"
    messages = {}
    for m in corpus.messages:
        shown = m.at if stamp_seconds else m.at.replace(second=0)
        messages.setdefault(message_key(shown.replace(tzinfo=chatgen.NAIROBI), m.text), m)
    by_code: dict[str, list[Got]] = defaultdict(list)
    for g in got:
        by_code[g.code].append(g)
    truth_codes = {t.code for t in corpus.truth if t.code}

    def seen(code: str) -> str:
        claims = by_code.get(code, [])
        return "; ".join(g.short() for g in claims) if claims else "no claim"

    # Precision: every verified claim is one the truth expects, for that number and price.
    expected_verified = {
        (t.code, t.recipient, t.price) for t in corpus.truth if t.expected == chatgen.VERIFIED
    }
    truth_of = defaultdict(list)
    for t in corpus.truth:
        truth_of[t.code].append(t)
    for g in got:
        if g.status != ClaimStatus.VERIFIED:
            continue
        s.verified_claims += 1
        if (g.code, g.recipient, g.price) in expected_verified:
            s.verified_right += 1
            continue
        wanted = truth_of.get(g.code, [])
        expected = "; ".join(_expected(t) for t in wanted) or "no such report"
        category = wanted[0].category if wanted else "-"
        s.misses.append(Miss("precision", category, g.code, expected, g.short(), g.text))

    # Recall, anomalies, corrections.
    for t in corpus.truth:
        cell = s.per_category[(t.category, t.expected)]
        cell[0] += 1
        ok = False
        if t.expected == chatgen.VERIFIED:
            s.truth_verified += 1
            ok = any(
                g.status == ClaimStatus.VERIFIED and g.recipient == t.recipient and g.price == t.price
                for g in by_code.get(t.code, [])
            )
            s.recalled += ok
            kind = "recall"
        elif t.expected == chatgen.SUPERSEDED:
            s.superseded += 1
            ok = any(g.status == ClaimStatus.SUPERSEDED for g in by_code.get(t.code, []))
            s.superseded_found += ok
            kind = "superseded"
        else:
            s.anomalies += 1
            if t.expected == chatgen.UNPARSEABLE:
                key = message_key(dt.datetime.fromisoformat(t.sent_at), t.text)
                ok = any(g.reason == chatgen.UNPARSEABLE and g.key == key for g in by_code.get("", []))
            else:
                ok = any(
                    g.reason == t.expected
                    and g.status != ClaimStatus.VERIFIED
                    and (t.sender is None or g.sender == t.sender)
                    for g in by_code.get(t.code, [])
                )
            s.anomalies_found += ok
            kind = "anomaly"
        cell[1] += ok
        if not ok:
            got_text = seen(t.code) if t.code else _seen_message(t, by_code.get("", []))
            s.misses.append(Miss(kind, t.category, t.code, _expected(t), got_text, t.text))

    # Claims nobody made: from our replies, from chatter, or with codes no report holds.
    unparseable_keys = {
        message_key(dt.datetime.fromisoformat(t.sent_at), t.text)
        for t in corpus.truth
        if t.expected == chatgen.UNPARSEABLE
    }
    for g in got:
        source = messages.get(g.key)
        kind = source.kind if source else "unmapped"
        if kind == "business":
            s.business_claims += 1
            s.misses.append(Miss("business", "business", g.code, "no claim", g.short(), g.text))
        elif kind == "chatter":
            s.chatter_claims += 1
            s.misses.append(Miss("chatter", source.category, g.code, "no claim", g.short(), g.text))
        elif (g.code and g.code not in truth_codes) or (not g.code and g.key not in unparseable_keys):
            s.extra_claims += 1
            s.misses.append(Miss("extra", kind, g.code, "no claim", g.short(), g.text))
    return s


def _expected(t: chatgen.Truth) -> str:
    if t.expected == chatgen.VERIFIED:
        return f"verified for {t.recipient} at {t.price}"
    return t.expected


def _seen_message(t: chatgen.Truth, codeless: list[Got]) -> str:
    return f"{len(codeless)} code-less claim(s) in the chat, none for this message"


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------
def test_generator_mirrors_the_settings():
    assert chatgen.TILL_NAME == settings.TILL_NAME
    assert chatgen.TILL_NUMBER == settings.TILL_NUMBER
    assert chatgen.SUPPORT_NAME == settings.SUPPORT_WHATSAPP_NAME
    assert chatgen.SUPPORT_MSISDN == settings.SUPPORT_WHATSAPP


def test_generator_is_deterministic_and_covers_every_case():
    args = dict(style="android", date_order="dmy", clock="12h", n_claims=600, start=_at(2026, 11, 27, 1))
    one, two = chatgen.generate(11, **args), chatgen.generate(11, **args)
    assert one.chat_bytes == two.chat_bytes and one.statement_bytes == two.statement_bytes
    assert one.truth_json() == two.truth_json()
    assert chatgen.generate(12, **args).chat_bytes != one.chat_bytes
    counts = one.counts()
    categories = {key.split(":")[0] for key in counts["categories"]}
    assert categories >= {name for name, _ in chatgen.SCENARIOS}
    assert set(counts["expected"]) == {chatgen.VERIFIED, chatgen.SUPERSEDED, *chatgen.ANOMALIES}
    assert 560 <= counts["truth"] <= 640
    assert counts["tags"]["midnight"] >= 9 and counts["tags"]["month_end"] >= 3
    # Paid 23:5x on 30 Nov, reported 00:0x on 1 Dec, its code dated 30 Nov.
    month_end = [t for t in one.truth if "month_end" in t.tags and t.expected == chatgen.VERIFIED]
    for t in month_end:
        paid, sent = dt.datetime.fromisoformat(t.paid_at), dt.datetime.fromisoformat(t.sent_at)
        assert (paid.month, paid.day, paid.hour) == (11, 30, 23) and (sent.month, sent.day, sent.hour) == (
            12,
            1,
            0,
        )
        assert chatgen.code_date(t.code) == paid.date()
    # Business replies quote codes; none is a truth item's report.
    assert any(any(t.code in m.text for t in one.truth if t.code) for m in one.business_messages)


@pytest.mark.parametrize("style", chatgen.STYLES)
@pytest.mark.parametrize("date_order", chatgen.DATE_ORDERS)
@pytest.mark.parametrize("clock", chatgen.CLOCKS)
def test_generated_truth_holds_for_every_layout(style, date_order, clock):
    """chatgen.check: codes unique up to look-alikes and dated on their payment day, valid
    Kenyan numbers, bundle prices for valid payments, statement consistent with the truth."""
    corpus = chatgen.generate(7, style=style, date_order=date_order, clock=clock, n_claims=120)
    chatgen.check(corpus)
    text = corpus.chat_bytes.decode("utf-8")
    assert text.count("\n") >= len(corpus.messages)
    first = text.split("\n", 1)[0]
    assert first.startswith("[") == (style == "ios")
    assert bool(re.search(r"\d[\s\u202f]?[ap]\.?m\.?", first, re.I)) == (clock == "12h")


@pytest.mark.django_db
@pytest.mark.parametrize("seed, style, date_order, clock, n_claims, start", CORPORA)
def test_claims_on_a_generated_corpus(seed, style, date_order, clock, n_claims, start, bundles, capsys):
    times = {}
    t0 = time.perf_counter()
    corpus = chatgen.generate(
        seed, style=style, date_order=date_order, clock=clock, n_claims=n_claims, start=start
    )
    times["generate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    imp = receipt_svc.statement_import_create(data=corpus.statement_bytes, filename=corpus.statement_filename)
    receipt_svc.statement_import_start(import_id=imp.pk, inline=True)
    times["statement"] = time.perf_counter() - t0
    assert TillReceipt.objects.count() == len(corpus.receipts)

    t0 = time.perf_counter()
    data, filename = corpus.upload()
    chat = whatsapp_import(data=data, filename=filename)
    times["chat"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    claims_reconcile(trigger="manual", now=corpus.last_message_at + dt.timedelta(days=1))
    times["match"] = time.perf_counter() - t0

    label = f"seed {seed} {style} {date_order} {clock} ({corpus.stamp_format.strip()})"
    result = score(corpus, claims_in_db(), label)
    result.timings = times
    result.notes.append(
        "messages in export "
        + str(len(corpus.messages) + 2)
        + ", read by the import "
        + str((chat.counts or {}).get("messages"))
        + "; import counts "
        + ", ".join(f"{k} {v}" for k, v in sorted((chat.counts or {}).items()) if isinstance(v, int))
    )
    result.notes.append(
        "claims by status/reason: "
        + ", ".join(
            f"{k} {v}"
            for k, v in sorted(
                Counter(
                    f"{s}/{r}" if r else s for s, r in Claim.objects.values_list("status", "reason")
                ).items()
            )
        )
    )
    report = result.report()
    if os.environ.get("CHAT_CORPUS_REPORT"):  # the table even when every check passes
        with capsys.disabled():
            print("\n" + report)
    assert not result.failures(), "; ".join(result.failures()) + "\n" + report
