"""A pasted M-Pesa SMS must name our till as the payee: one naming anyone else is never verified.

A genuine SMS cannot pair one of our till receipts with another payee, so such a claim goes to
review as ``other_merchant`` before any other outcome, receipt or not. The SMS texts are the real
ones in tests/data/sms/samples.txt (formats doc §3), with our receipt's code and amount put in.
"""

import datetime as dt
import re
import string
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ledger.models import EntryKind, JournalEntry, Order
from reconciliation.models import Claim, ClaimReason, ClaimStatus
from reconciliation.parsers import payee_is_us
from reconciliation.services import claims as svc
from reconciliation.services import decisions
from reconciliation.services.errors import VerificationInvalid
from reconciliation.services.matcher import claims_reconcile

from .factories import NOW, ClaimFactory, receipt

SAMPLES = (Path(__file__).resolve().parents[1] / "data" / "sms" / "samples.txt").read_text().splitlines()
TILL_SMS = SAMPLES[0]  # TCG3YADR1X ... Ksh2,045.00 paid to POWERMART SUPERMARKET. on 16/3/25 at 7:51 PM...
PAYBILL_SMS = SAMPLES[3]  # UBG6U6NN6A ... Ksh50.00 sent to SAFARICOM POSTPAID BUNDLES for account EasyTalk...
SEND_SMS = SAMPLES[5]  # QC352PDIVL ... Ksh1,000.00 sent to SOPHIA  MWENI 0702972812 on 3/3/22...
WHEN = "10/3/26 at 11:55 AM"  # five minutes before NOW, when receipt() pays
ZUKU = (
    "The pasted SMS says KES 1,500.00 was paid to ZUKU FIBER, not to TILLBOOK DATA: "
    "an altered or other payment."
)


def till_sms(code: str, amount: str, payee: str) -> str:
    return (
        TILL_SMS.replace("TCG3YADR1X", code)
        .replace("Ksh2,045.00", f"Ksh{Decimal(amount):,.2f}")
        .replace("POWERMART SUPERMARKET", payee)
        .replace("16/3/25 at 7:51 PM", WHEN)
    )


def paybill_sms(code: str, amount: str, payee: str, account: str = "0727555578") -> str:
    return (
        PAYBILL_SMS.replace("UBG6U6NN6A", code)
        .replace("Ksh50.00", f"Ksh{Decimal(amount):,.2f}")
        .replace("SAFARICOM POSTPAID BUNDLES", payee)
        .replace("EasyTalk", account)
        .replace("16/2/26 at 9:18 AM", WHEN)
    )


def send_sms(code: str, amount: str, person: str = "SOPHIA  MWENI 0702972812") -> str:
    return (
        SEND_SMS.replace("QC352PDIVL", code)
        .replace("Ksh1,000.00", f"Ksh{Decimal(amount):,.2f}")
        .replace("SOPHIA  MWENI 0702972812", person)
        .replace("3/3/22 at 5:28 PM", WHEN)
    )


def paste(text: str, at: dt.datetime = NOW) -> Claim:
    (claim,) = svc.message_paste(sender="0712 345 678", text=text + "\nfor 0727555578", sent_at=at)["claims"]
    return claim


def run(at: dt.datetime = NOW):
    return claims_reconcile(trigger="test", now=at)


def decided(claim: Claim) -> Claim:
    run()
    claim.refresh_from_db()
    return claim


def signals(claim):
    return {s["name"]: s["result"] for s in claim.explanation["signals"]}


def assert_other_merchant(claim: Claim) -> None:
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.OTHER_MERCHANT)
    assert signals(claim)["merchant"] == "fail"
    assert claim.order is None and claim.receipt is None
    assert not Order.objects.exists()
    assert not JournalEntry.objects.filter(kind=EntryKind.CLAIM_VERIFIED).exists()


@pytest.fixture(autouse=True)
def _our_till(settings):
    settings.TILL_NAME = "TILLBOOK DATA"
    settings.TILL_NUMBER = "6944804"
    settings.TILL_OTHER_NAMES = []


# --- the matcher ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_sms_paying_another_merchant_with_our_code_and_right_amount_goes_to_review(bundles):
    r = receipt(amount="1500")
    claim = decided(paste(till_sms(r.code, "1500", "ZUKU FIBER")))
    assert (claim.claimed_merchant, claim.claimed_amount) == ("ZUKU FIBER", Decimal("1500.00"))
    assert_other_merchant(claim)
    assert claim.explanation["summary"] == ZUKU
    assert claim.suggested_receipt == r  # shown to the agent, never used
    assert signals(claim)["code_exact"] == "pass" and signals(claim)["sms_amount"] == "pass"
    assert signals(claim)["amount_matches_bundle"] == "pass"
    r.refresh_from_db()
    assert r.order is None
    assert run().counts.get("verified", 0) == 0  # final: a later run changes nothing
    claim.refresh_from_db()
    assert claim.reason == ClaimReason.OTHER_MERCHANT


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payee",
    [
        "TILLBOOK DATA",
        "tillbook data",
        "Tillbook   Data",
        "TILLBOOKDATA",
        "TILL-BOOK, DATA",
        "TILLBOOK DATA.",
        "Tillbook Data Ltd.",
        "TILLBOOK DATA LIMITED",
        "TILLBOOK DATA ENTERPRISES",
        "TILLBOOK DAT",  # cut short by M-Pesa
        "TILLBOOK DATA LT",
    ],
)
def test_our_name_in_any_tolerated_form_verifies(bundles, payee):
    r = receipt(amount="1500")
    claim = decided(paste(till_sms(r.code, "1500", payee)))
    assert claim.status == ClaimStatus.VERIFIED and claim.bundle == bundles["monthly-25gb"]
    assert signals(claim)["merchant"] == "pass"
    assert claim.order.recipient_msisdn == "254727555578"


@pytest.mark.django_db
@override_settings(TILL_OTHER_NAMES=["MAMA'S DATA SHOP", "TB DATA"])
@pytest.mark.parametrize("payee", ["MAMAS DATA SHOP", "Mama's Data Shop", "T.B. DATA", "TILLBOOK DATA"])
def test_a_name_the_till_traded_under_verifies(bundles, payee):
    r = receipt(amount="250")
    claim = decided(paste(till_sms(r.code, "250", payee)))
    assert claim.status == ClaimStatus.VERIFIED


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payee",
    [
        "ZUKU FIBER",
        "TILLBOOKS DATA",  # one letter more is another name
        "TILLBOK DATA",
        "TILLB00K DATA",  # zeros for O
        "\u0422ILLBOOK DATA",  # Cyrillic Т
        "TILL DATA",
        "BOOK DATA",
        "DATA TILLBOOK",
        "TILLBOO",  # too short to be ours cut short
        "TILLBOOK DATA SERVICES",
        "TILLBOOK LTD",
    ],
)
def test_names_close_to_ours_are_another_payee(bundles, payee):
    r = receipt(amount="250")
    claim = decided(paste(till_sms(r.code, "250", payee)))
    assert_other_merchant(claim)
    assert f"paid to {claim.claimed_merchant}, not to TILLBOOK DATA" in claim.explanation["summary"]


@pytest.mark.django_db
def test_send_money_to_a_person_is_another_payee(bundles):
    r = receipt(amount="250")
    claim = decided(paste(send_sms(r.code, "250")))
    assert claim.claimed_merchant == "SOPHIA MWENI 0702972812"
    assert claim.recipient_msisdn == "254727555578"  # never the person the SMS paid
    assert_other_merchant(claim)


@pytest.mark.django_db
def test_send_money_to_a_number_under_our_name_is_still_a_person(bundles):
    r = receipt(amount="250")
    claim = decided(paste(send_sms(r.code, "250", person="TILLBOOK DATA 0712000111")))
    assert claim.claimed_merchant == "TILLBOOK DATA 0712000111"
    assert_other_merchant(claim)


@pytest.mark.django_db
def test_paybill_sms_counts_only_its_payee_never_its_account(bundles):
    ours = receipt(amount="250")
    verified = decided(paste(paybill_sms(ours.code, "250", "TILLBOOK DATA")))
    assert verified.claimed_merchant == "TILLBOOK DATA" and verified.status == ClaimStatus.VERIFIED
    other = receipt(amount="250")
    claim = decided(paste(paybill_sms(other.code, "250", "ZUKU FIBER", "TILLBOOK DATA")))
    assert claim.claimed_merchant == "ZUKU FIBER"
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.OTHER_MERCHANT)
    assert claim.order is None


@pytest.mark.django_db
def test_no_sms_pasted_is_unaffected(bundles):
    r = receipt(amount="250")
    claim = decided(paste(f"Nimelipa {r.code}"))
    assert claim.claimed_merchant == "" and claim.status == ClaimStatus.VERIFIED
    assert signals(claim)["merchant"] == "na"
    factory_made = ClaimFactory(code=receipt(amount="150").code)
    assert decided(factory_made).status == ClaimStatus.VERIFIED


@pytest.mark.django_db
def test_without_a_receipt_it_is_decided_at_once_and_a_later_receipt_changes_nothing(bundles):
    code = "UCAAZUKU47"
    claim = decided(paste(till_sms(code, "1500", "ZUKU FIBER")))
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.OTHER_MERCHANT)
    assert signals(claim)["code_exact"] == "fail" and claim.suggested_receipt is None
    receipt(code=code, amount="1500")
    claim = decided(claim)
    assert_other_merchant(claim)


@pytest.mark.django_db
def test_other_merchant_comes_before_every_other_reason(bundles):
    wrong_amount = receipt(amount="1500")
    claim = decided(paste(till_sms(wrong_amount.code, "2500", "ZUKU FIBER")))
    assert claim.reason == ClaimReason.OTHER_MERCHANT and signals(claim)["sms_amount"] == "fail"
    assert "KES 2,500.00 was paid to ZUKU FIBER" in claim.explanation["summary"]

    used = receipt(amount="250")
    first = ClaimFactory(code=used.code, claimed_at=NOW - dt.timedelta(minutes=2))
    assert decided(first).status == ClaimStatus.VERIFIED
    again = decided(paste(till_sms(used.code, "250", "ZUKU FIBER")))
    assert again.reason == ClaimReason.OTHER_MERCHANT and again.order is None


@pytest.mark.django_db
def test_an_stk_receipt_quoted_in_an_sms_to_another_payee_is_other_merchant_with_the_order_shown(bundles):
    from .test_stk_settlement import STK_CODE, stk_paid

    order = stk_paid()
    claim = decided(paste(till_sms(STK_CODE, "150", "ZUKU FIBER")))
    assert claim.reason == ClaimReason.OTHER_MERCHANT
    assert signals(claim)["stk_payment"] == "fail"
    assert claim.explanation["paid_by"]["order"] == order.reference
    assert Order.objects.filter(mpesa_receipt=STK_CODE).count() == 1


@pytest.mark.django_db
def test_the_automatic_verification_itself_refuses_another_payee(bundles):
    r = receipt(amount="1500")
    claim = paste(till_sms(r.code, "1500", "ZUKU FIBER"))
    with pytest.raises(VerificationInvalid, match="ZUKU FIBER"):
        decisions.claim_verify_auto(
            claim_id=claim.pk, receipt_id=r.pk, bundle_id=bundles["monthly-25gb"].pk, explanation={}
        )
    assert Claim.objects.get(pk=claim.pk).status == ClaimStatus.PENDING
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_were_the_matcher_to_let_it_through_the_verification_would_still_refuse(bundles, monkeypatch):
    from reconciliation.services import evaluate

    monkeypatch.setattr(evaluate, "_merchant_signal", lambda claim: evaluate._signal("merchant", "pass", ""))
    r = receipt(amount="1500")
    claim = paste(till_sms(r.code, "1500", "ZUKU FIBER"))
    counts = run().counts
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.VERIFY_FAILED)
    assert "ZUKU FIBER, not to TILLBOOK DATA" in claim.explanation["summary"]
    assert counts.get("lost_race", 0) == 0 and counts.get("verified", 0) == 0
    assert not Order.objects.exists()


# --- the agent --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_claim_and_verify_pages_show_the_other_payee_and_the_agent_may_still_verify(
    bundles, agent, client_for
):
    r = receipt(amount="1500")
    claim = decided(paste(till_sms(r.code, "1500", "ZUKU FIBER")))
    client = client_for(agent)
    page = client.get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    banner = page.split('data-testid="other-payee-banner"', 1)[1].split("</div>", 1)[0]
    assert "ZUKU FIBER, not to TILLBOOK DATA" in banner
    assert page.index('data-testid="other-payee-banner"') < page.index('data-testid="claim-status"')
    assert 'data-testid="other-payee">ZUKU FIBER (not our till)' in page
    verify_url = reverse("admin:reconciliation_claim_verify", args=[claim.pk])
    form = client.get(verify_url).content.decode()
    assert 'data-testid="page-warning"' in form and "ZUKU FIBER, not to TILLBOOK DATA" in form
    response = client.post(
        verify_url,
        {
            "receipt_code": r.code,
            "amount": "1500",
            "bundle": bundles["monthly-25gb"].pk,
            "recipient": "0727555578",
        },
    )
    assert response.status_code == 302
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.decided_by == agent
    # Still shown afterwards: whoever opens the claim sees what the agent decided over.
    page = client.get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    assert 'data-testid="other-payee-banner"' in page


@pytest.mark.django_db
def test_claim_pages_of_our_own_payee_show_no_warning(bundles, agent, client_for):
    r = receipt(amount="199")  # needs review for its amount, not its payee
    claim = decided(paste(till_sms(r.code, "199", "TILLBOOK DATA")))
    assert claim.reason == ClaimReason.AMOUNT_MISMATCH
    client = client_for(agent)
    page = client.get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    form = client.get(reverse("admin:reconciliation_claim_verify", args=[claim.pk])).content.decode()
    assert "other-payee" not in page and "page-warning" not in form


@pytest.mark.django_db
def test_reply_asks_for_the_original_sms_without_accusing(bundles):
    r = receipt(amount="1500")
    claim = decided(paste(till_sms(r.code, "1500", "ZUKU FIBER")))
    reply = decisions.whatsapp_reply(claim)
    assert claim.code in reply and "original M-Pesa confirmation SMS" in reply
    assert "TILLBOOK DATA (6944804)" in reply
    for word in ("altered", "fake", "fraud", "ZUKU", "another payee"):
        assert word.lower() not in reply.lower()


# --- payee_is_us ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("TILLBOOK DATA", True),
        ("  tillbook\u00a0data. ", True),
        ("TILLBOOK & DATA", True),
        ("TILLBOOK AND DATA", True),
        ("TILLBOOK DATA CO LTD", True),
        ("TILLBOOK DATA SHOP", True),
        ("TILLBOOK", True),  # a cut at 8 characters: cannot be told from a payee of that name
        ("TILLBOO", False),
        ("TILLBOOK DATA LTD LIMITED SHOP", False),  # at most two company words
        ("TILLBOOK DATA 0712345678", False),
        ("", False),
        ("...", False),
        (None, False),
    ],
)
def test_payee_is_us_table(name, ours, settings):
    settings.TILL_NAME = "TILLBOOK DATA"
    assert payee_is_us(name) is ours


def test_our_name_set_with_a_company_word_still_matches_without_it(settings):
    settings.TILL_NAME = "TILLBOOK DATA LTD"
    assert payee_is_us("TILLBOOK DATA") and payee_is_us("TILLBOOK DATA LIMITED")
    assert not payee_is_us("TILLBOOK DATA SERVICES")


def test_short_other_names_must_be_whole(settings):
    settings.TILL_OTHER_NAMES = ["TB DATA"]
    assert payee_is_us("T.B. Data") and not payee_is_us("TB DAT")


def test_no_names_configured_means_nothing_is_us(settings):
    settings.TILL_NAME = ""
    settings.TILL_OTHER_NAMES = []
    assert not payee_is_us("TILLBOOK DATA")


def test_every_cut_of_our_name_is_ours_from_8_characters(settings):
    settings.TILL_NAME = "TILLBOOK DATA"
    name = settings.TILL_NAME
    for cut in range(1, len(name) + 1):
        assert payee_is_us(name[:cut]) is (cut >= 8), name[:cut]


# The autouse settings fixture is set once per test, and no example changes it.
FIXTURE_OK = hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
NAME_CHARS = string.ascii_letters + string.digits + " .,-'"


def significant(text: str) -> int:
    return len(re.sub(r"[^A-Za-z0-9]", "", text))


@FIXTURE_OK
@given(st.one_of(st.none(), st.text()), st.lists(st.text(), max_size=3))
def test_payee_is_us_never_raises(name, names):
    assert payee_is_us(name, names=names) in (True, False)
    assert payee_is_us(name) in (True, False)


@FIXTURE_OK
@given(st.text(NAME_CHARS, max_size=40).filter(lambda n: significant(n) > 0), st.data())
def test_every_cut_of_a_name_keeping_8_characters_is_accepted(name, data):
    cut = data.draw(st.integers(min_value=1, max_value=len(name)))
    printed = name[:cut]
    if significant(printed) >= min(8, significant(name)):
        assert payee_is_us(printed, names=[name])
        assert payee_is_us(printed.upper().replace(" ", ""), names=[name])
        assert payee_is_us(" ".join(printed.lower().split()) + ".", names=[name])


@FIXTURE_OK
@given(
    st.text(NAME_CHARS, max_size=40).filter(lambda n: significant(n) > 0),
    st.from_regex(r"\A0[17][0-9]{8}\Z"),
)
def test_a_name_followed_by_a_phone_number_is_a_person(name, phone):
    assert not payee_is_us(f"{name} {phone}", names=[name])
