"""Claims as customers really write them: unreadable reports reach the queue, a number written
just before the code is the one to load, a correction supersedes the failed claim, and our own
replies (by number or profile name) never make claims."""

import datetime as dt

import pytest
from django.urls import reverse

from console.models import AuditEvent
from reconciliation.models import Claim, ClaimReason, ClaimStatus, MessageKind, WhatsAppMessage
from reconciliation.services import claims as svc
from reconciliation.services import decisions
from reconciliation.services.matcher import claims_reconcile

from .factories import NAIROBI, code_for, receipt

pytestmark = pytest.mark.django_db
DAY = dt.datetime(2026, 3, 10, 9, 0, tzinfo=NAIROBI)
CODE = code_for(DAY.date(), "7KQ4TWX")  # UCA7KQ4TWX


def export(*lines: tuple[int, str, str]) -> bytes:
    """An Android export: (minutes after 09:00, author, text) per message."""
    out = []
    for minutes, author, text in lines:
        at = DAY + dt.timedelta(minutes=minutes)
        out.append(f"{at:%d/%m/%Y, %H:%M} - {author}: {text}")
    return ("\n".join(out) + "\n").encode()


def import_chat(data: bytes, **kw):
    return svc.whatsapp_import(data=data, filename="chat.txt", **kw)


def reconcile():
    return claims_reconcile(trigger="test", now=DAY + dt.timedelta(hours=3))


# --- 3. an unreadable payment report reaches the queue ------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "nimelipa 150 lakini code imepotea",
        "I have paid, code attached",
        "sent Ksh 250 to your till",
        "150/= sent",
        "code is UCA7KQ4T",  # cut short
        "UCA7KQ4TWX8 Confirmed",  # one character too many
    ],
)
def test_a_report_without_a_readable_code_is_an_unparseable_claim_in_the_queue(text):
    imp = import_chat(export((0, "+254 712 345 678", text)))
    (claim,) = Claim.objects.all()
    assert (claim.code, claim.status, claim.reason) == ("", ClaimStatus.NEEDS_REVIEW, ClaimReason.UNPARSEABLE)
    assert claim.sender_msisdn == claim.recipient_msisdn == "254712345678"
    assert claim.message.kind == MessageKind.UNPARSEABLE and imp.counts["unparseable"] == 1
    assert "no M-Pesa code could be read" in claim.explanation["summary"]
    reconcile()  # the matcher has nothing to match: it stays with a person
    claim.refresh_from_db()
    assert (claim.status, claim.reason) == (ClaimStatus.NEEDS_REVIEW, ClaimReason.UNPARSEABLE)


@pytest.mark.parametrize("text", ["hello", "how much is 2GB for 24hrs?", "asante sana 🙏", "ok thanks"])
def test_chatter_is_kept_and_makes_no_claim(text):
    import_chat(export((0, "+254 712 345 678", text)))
    assert not Claim.objects.exists()
    assert WhatsAppMessage.objects.get().kind == MessageKind.CHATTER


def test_two_unreadable_reports_of_one_sender_are_two_claims():
    import_chat(
        export((0, "+254 712 345 678", "nimelipa 150"), (40, "+254 712 345 678", "nimelipa tena 250"))
    )
    assert Claim.objects.filter(code="", reason=ClaimReason.UNPARSEABLE).count() == 2


def test_the_messages_list_filters_by_how_a_message_was_read(client_for, finance):
    import_chat(
        export(
            (0, "+254 712 345 678", "nimelipa 150"),
            (30, "+254 722 000 111", f"paid {CODE}"),
            (31, "+254 733 000 222", "hello"),
        )
    )
    url = reverse("admin:reconciliation_whatsappmessage_changelist")
    page = client_for(finance).get(url, {"kind__exact": "unparseable"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "nimelipa 150" in html and CODE not in html and "hello" not in html


def test_an_agent_verifies_an_unreadable_report_and_the_claim_takes_the_code(bundles, agent):
    r = receipt(code=CODE, amount="150", paid_at=DAY - dt.timedelta(minutes=2))
    import_chat(export((0, "+254 712 345 678", "nimelipa 150, code imepotea")))
    claim = Claim.objects.get()
    decisions.claim_verify(claim_id=claim.pk, receipt_code=r.code, amount="150", user=agent)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.code == CODE and claim.order.price == 150


def test_a_report_next_to_the_senders_code_is_context_not_a_second_claim(bundles):
    receipt(code=CODE, amount="150", paid_at=DAY - dt.timedelta(minutes=2))
    import_chat(
        export(
            (0, "+254 712 345 678", "Nimelipa 150 sasa hivi"),
            (1, "+254 712 345 678", CODE),
        )
    )
    (claim,) = Claim.objects.all()
    assert claim.code == CODE
    kinds = list(WhatsAppMessage.objects.order_by("sent_at").values_list("kind", flat=True))
    assert kinds == [MessageKind.CONTEXT, MessageKind.CLAIM]


# --- 4. conversation context ------------------------------------------------------------------
def test_the_number_written_just_before_the_code_is_the_one_loaded(bundles):
    receipt(code=CODE, amount="150", paid_at=DAY)
    import_chat(
        export(
            (0, "+254 712 345 678", "Weka kwa 0741 722 879"),
            (2, "+254 712 345 678", CODE),
            (2, "+254 799 000 333", "hello"),  # another sender in between changes nothing
        )
    )
    reconcile()
    claim = Claim.objects.get()
    assert claim.recipient_msisdn == "254741722879" and claim.status == ClaimStatus.VERIFIED
    assert claim.explanation["parse"]["recipient_from"] == "context"
    assert claim.order.recipient_msisdn == "254741722879"


@pytest.mark.parametrize(
    "between",
    [
        [(1, "+254 712 345 678", f"paid {code_for(DAY.date(), '7MMMMMA')}")],  # another payment between
        [],
    ],
)
def test_a_number_before_another_payment_or_long_ago_is_not_taken(between):
    gap = 30 if not between else 3  # 30 minutes is another conversation
    import_chat(
        export((0, "+254 712 345 678", "load 0741 722 879"), *between, (gap, "+254 712 345 678", CODE))
    )
    assert Claim.objects.get(code=CODE).recipient_msisdn == "254712345678"


def test_a_number_in_the_codes_own_message_wins_over_the_one_before():
    import_chat(
        export(
            (0, "+254 712 345 678", "weka 0741 722 879"),
            (1, "+254 712 345 678", f"{CODE} for 0722 000 111"),
        )
    )
    assert Claim.objects.get().recipient_msisdn == "254722000111"


def test_a_correction_that_verifies_supersedes_the_failed_claim(bundles, client_for, agent):
    right = code_for(DAY.date(), "7EFRW2N")
    receipt(code=right, amount="150", paid_at=DAY - dt.timedelta(minutes=5))
    wrong = code_for(DAY.date(), "7TTTTTT")
    import_chat(
        export(
            (0, "+254 712 345 678", f"paid {wrong}"),
            (6, "+254 712 345 678", f"sorry, correct code is {right}"),
        )
    )
    reconcile()
    old, new = Claim.objects.get(code=wrong), Claim.objects.get(code=right)
    assert new.status == ClaimStatus.VERIFIED
    assert old.status == ClaimStatus.SUPERSEDED and old.superseded_by == new
    assert AuditEvent.objects.filter(action="claim.superseded", object_id=str(old.pk)).exists()
    # Out of the queue, kept, linked both ways on the page.
    assert not Claim.objects.filter(status__in=[ClaimStatus.PENDING, ClaimStatus.NEEDS_REVIEW]).exists()
    page = client_for(agent).get(reverse("admin:reconciliation_claim_change", args=[old.pk]))
    assert reverse("admin:reconciliation_claim_change", args=[new.pk]) in page.content.decode()
    assert "Superseded by claim" in old.explanation["summary"]
    reply = decisions.whatsapp_reply(old)
    assert right in reply and "ignore" in reply


def test_a_second_payment_is_not_superseded_and_a_superseded_code_that_arrives_reopens(bundles):
    first = code_for(DAY.date(), "7AAAAAA")
    second = code_for(DAY.date(), "7MMMMMM")  # another code, no correction words: another payment
    receipt(code=second, amount="150", paid_at=DAY)
    import_chat(export((0, "+254 712 345 678", f"paid {first}"), (5, "+254 712 345 678", f"paid {second}")))
    reconcile()
    assert Claim.objects.get(code=first).status == ClaimStatus.NEEDS_REVIEW  # unknown_code, still open

    typo = code_for(DAY.date(), "7BBBBBA")
    fixed = code_for(DAY.date(), "7BBBBBB")
    receipt(code=fixed, amount="150", paid_at=DAY)
    import_chat(
        export((60, "+254 722 000 111", f"paid {typo}"), (62, "+254 722 000 111", f"{fixed} this one"))
    )
    reconcile()
    assert Claim.objects.get(code=typo).status == ClaimStatus.SUPERSEDED
    # The superseded code turns out to be real money too: back to matching, never lost.
    receipt(code=typo, amount="150", paid_at=DAY + dt.timedelta(minutes=61))
    run = reconcile()
    assert run.counts.get("superseded_reopened") == 1
    claim = Claim.objects.get(code=typo)
    assert claim.status == ClaimStatus.VERIFIED and claim.superseded_by is None


# --- 5. our own replies -----------------------------------------------------------------------
@pytest.mark.parametrize("author", ["Tillbook Support", "~ tillbook  support", "+254 782 070228"])
def test_our_replies_by_number_or_profile_name_make_no_claim(author, settings):
    settings.SUPPORT_WHATSAPP = "254782070228"
    settings.SUPPORT_WHATSAPP_NAME = "Tillbook Support"
    imp = import_chat(export((0, author, f"Received {CODE}, loading 0712 345 678 now. Ksh 150 paid")))
    assert not Claim.objects.exists() and imp.counts["from_business"] == 1
    assert WhatsAppMessage.objects.get().kind == MessageKind.BUSINESS


def test_business_name_given_on_import_overrides_the_setting(settings):
    settings.SUPPORT_WHATSAPP_NAME = "Tillbook Support"
    import_chat(export((0, "Tillbook Care", f"Received {CODE}")), business_name="Tillbook Care")
    assert not Claim.objects.exists()


def test_a_pasted_code_loads_the_number_the_sender_pasted_just_before():
    svc.message_paste(sender="0712 345 678", text="Weka kwa 0741 722 879", sent_at=DAY)
    result = svc.message_paste(sender="0712 345 678", text=CODE, sent_at=DAY + dt.timedelta(minutes=1))
    (claim,) = result["claims"]
    assert claim.recipient_msisdn == "254741722879"
    later = svc.message_paste(
        sender="0712 345 678", text=code_for(DAY.date(), "7KQ4TWA"), sent_at=DAY + dt.timedelta(minutes=30)
    )
    assert later["claims"][0].recipient_msisdn == "254712345678"  # too long after: the sender


def test_the_number_written_just_after_the_code_is_the_one_loaded_when_none_came_before():
    import_chat(export((0, "+254 712 345 678", CODE), (1, "+254 712 345 678", "for +254729016435 pls")))
    claim = Claim.objects.get()
    assert claim.recipient_msisdn == "254729016435"
    assert claim.explanation["parse"]["recipient_from"] == "context_after"


def test_a_number_after_the_code_that_leads_the_next_payment_stays_with_that_payment():
    other = code_for(DAY.date(), "7MMMMMA")
    import_chat(
        export(
            (0, "+254 712 345 678", CODE),
            (1, "+254 712 345 678", "load 0741 722 879"),
            (2, "+254 712 345 678", other),
        )
    )
    assert Claim.objects.get(code=other).recipient_msisdn == "254741722879"
    assert Claim.objects.get(code=CODE).recipient_msisdn == "254712345678"


def test_a_correction_loads_the_number_the_corrected_claim_named():
    wrong = code_for(DAY.date(), "7KQ4TWY")
    import_chat(
        export(
            (0, "+254 712 345 678", f"{wrong} for 0758943623"),
            (5, "+254 712 345 678", f"Pole, hii ndio {CODE}"),
        )
    )
    claim = Claim.objects.get(code=CODE)
    assert claim.recipient_msisdn == "254758943623"
    assert claim.explanation["parse"]["recipient_from"] == "correction"


def test_a_saved_contact_who_wrote_the_number_before_is_not_ambiguous():
    import_chat(export((0, "Ken Mtaa", "For +254 710 479658 👍"), (2, "Ken Mtaa", CODE)))
    claim = Claim.objects.get()
    assert claim.sender_msisdn == claim.recipient_msisdn == "254710479658"
    assert claim.explanation["parse"]["ambiguous"] == []


@pytest.mark.parametrize(
    "text",
    [
        "Nimelipa na +254110190264, weka 15GB kwa 0798888454. Code {code}",
        "My  number is 254719905249 but weka kwa 0798888454 ({code})",
        "{code}\nPaid with 254722512315\nLoad +254 798 888 454",
    ],
)
def test_the_paying_number_is_told_from_the_number_to_load(text):
    import_chat(export((0, "+254 700 000 001", text.format(code=CODE))))
    claim = Claim.objects.get()
    assert claim.recipient_msisdn == "254798888454" and claim.explanation["parse"]["ambiguous"] == []


@pytest.mark.parametrize(
    "text", ["Till number ni gani?", "Can I pay with mpesa?", "How much is daily 2GB ksh?"]
)
def test_a_question_about_paying_is_chatter(text):
    import_chat(export((0, "+254 712 345 678", text)))
    assert not Claim.objects.exists()
