"""Claims from pasted messages and WhatsApp exports, and the end-to-end corpus."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from console.kernel.phones import InvalidPhoneNumber
from reconciliation.models import Claim, ClaimReason, ClaimStatus, WhatsAppImport, WhatsAppMessage
from reconciliation.services import claims as svc
from reconciliation.services.errors import ImportRefused
from reconciliation.services.matcher import claims_reconcile

from .factories import NAIROBI

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data"
CHAT = DATA / "reconciliation" / "chat_march_android.txt"
MARCH_NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=NAIROBI)
SENT = dt.datetime(2026, 3, 10, 9, 0, tzinfo=NAIROBI)


def paste(text, sender="0712 345 678", sent_at=SENT):
    return svc.message_paste(sender=sender, text=text, sent_at=sent_at)


def test_paste_with_code_and_number_makes_a_claim_for_that_number():
    result = paste("Nimelipa UCA1KQ7T4D, weka 0722 000 111 tafadhali")
    (claim,) = result["claims"]
    assert (claim.code, claim.sender_msisdn, claim.recipient_msisdn) == (
        "UCA1KQ7T4D",
        "254712345678",
        "254722000111",
    )
    assert claim.status == ClaimStatus.PENDING and claim.claimed_at == SENT


def test_paste_without_number_loads_the_sender():
    (claim,) = paste("code UCA1KQ7T4D")["claims"]
    assert claim.recipient_msisdn == "254712345678"


def test_business_number_is_never_the_recipient(settings):
    settings.SUPPORT_WHATSAPP = "254782070228"
    (claim,) = paste("paid UCA1KQ7T4D, your number is 0782 070 228 right?")["claims"]
    assert claim.recipient_msisdn == "254712345678"


def test_pasted_sms_gives_amount_and_merchant():
    text = (
        "UCA2MX9P3F Confirmed. Ksh250.00 paid to TILLBOOK DATA. on 10/3/26 at 9:15 AM.New M-PESA balance is "
        "Ksh1,324.13. Transaction cost, Ksh0.00.\nfor 0727555578"
    )
    (claim,) = paste(text)["claims"]
    assert claim.claimed_amount == Decimal("250.00") and claim.claimed_merchant == "TILLBOOK DATA"
    assert claim.recipient_msisdn == "254727555578"


def test_several_codes_make_several_claims_and_repeats_are_one_claim():
    first = paste("UCA7AM3CD4 and UCA8EF5GH6")
    assert sorted(c.code for c in first["claims"]) == ["UCA7AM3CD4", "UCA8EF5GH6"]
    again = paste("UCA7AM3CD4 again!!", sent_at=SENT + dt.timedelta(minutes=5))
    assert again["claims_new"] == 0
    assert Claim.objects.count() == 2 and WhatsAppMessage.objects.count() == 2


def test_chatter_makes_no_claim_and_an_unreadable_report_makes_one_to_review():
    assert paste("hello, what bundles do you have?")["kind"] == "chatter"
    unreadable = paste("I paid via mpesa but lost the message")
    assert unreadable["kind"] == "unparseable"
    (claim,) = unreadable["claims"]
    assert (claim.code, claim.status, claim.reason) == ("", ClaimStatus.NEEDS_REVIEW, ClaimReason.UNPARSEABLE)
    assert WhatsAppMessage.objects.count() == 2 and Claim.objects.count() == 1


def test_paste_refuses_bad_sender_and_empty_text():
    with pytest.raises(InvalidPhoneNumber):
        paste("UCA1KQ7T4D", sender="12345")
    with pytest.raises(ImportRefused):
        paste("   ")
    assert not WhatsAppMessage.objects.exists()


def test_named_sender_without_number_is_ambiguous_after_matching(bundles):
    read = svc.message_read(text="paid UCA1KQ7T4D", sent_at=SENT, sender_msisdn=None, sender_label="Auntie")
    (draft,) = read.drafts
    assert draft.sender_msisdn == "" and draft.ambiguous


def test_whatsapp_export_counts_every_kind():
    imp = svc.whatsapp_import(data=CHAT.read_bytes(), filename=CHAT.name, business_number="0782070228")
    c = imp.counts
    assert c["messages"] == 14 and c["new_messages"] == 14
    assert c["system"] == 1 and c["media"] == 2 and c["from_business"] == 1
    assert c["unparseable"] == 1 and c["chatter"] == 1
    # UCA3WQ6N7H twice from one sender is one claim; the unreadable report is a claim to review.
    assert c["claims_new"] == 9
    mary = Claim.objects.get(code="UCA2MX9P3F")
    assert mary.sender_msisdn == "254727555578" and mary.message.sender_label == "Mary Atieno"
    assert mary.claimed_amount == Decimal("250.00")
    pair = dict(
        Claim.objects.filter(code__in=["UCA7AM3CD4", "UCA8EF5GH6"]).values_list("code", "recipient_msisdn")
    )
    assert pair == {"UCA7AM3CD4": "254722333444", "UCA8EF5GH6": "254722333445"}


def test_reuploading_an_export_adds_nothing():
    svc.whatsapp_import(data=CHAT.read_bytes(), filename=CHAT.name)
    before = (WhatsAppMessage.objects.count(), Claim.objects.count())
    imp = svc.whatsapp_import(data=CHAT.read_bytes(), filename=CHAT.name)
    assert (WhatsAppMessage.objects.count(), Claim.objects.count()) == before
    assert (
        imp.counts["new_messages"] == 0
        and imp.counts["known_messages"] == 14
        and imp.counts["claims_new"] == 0
    )


def test_identical_messages_in_one_export_are_both_kept():
    line = "10/03/2026, 10:42 - +254 712 000 678: ok\n"
    svc.whatsapp_import(data=(line * 2).encode(), filename="dup.txt")
    assert WhatsAppMessage.objects.count() == 2


@pytest.mark.parametrize("name", ["junk.txt", "no_txt.zip"])
def test_unreadable_export_is_refused_and_saves_nothing(name):
    with pytest.raises(ImportRefused):
        svc.whatsapp_import(data=(DATA / "whatsapp" / name).read_bytes(), filename=name)
    assert not WhatsAppImport.objects.exists() and not WhatsAppMessage.objects.exists()


@pytest.mark.parametrize(
    "name", ["android_24h.txt", "ios_export.zip", "android_us_12h.txt", "ios_gb_nocomma.txt"]
)
def test_parser_samples_import_without_error(name):
    imp = svc.whatsapp_import(data=(DATA / "whatsapp" / name).read_bytes(), filename=name)
    assert imp.counts["messages"] == WhatsAppMessage.objects.count() > 0


def test_end_to_end_statement_then_chat_then_overlap(bundles, capsys):
    """The realistic day: statement import, chat export, matcher, a late statement."""
    call_command("import_statement", str(DATA / "reconciliation" / "statement_march.csv"))
    call_command("import_whatsapp", str(CHAT), "--business-number", "254782070228")
    claims_reconcile(trigger="test", now=MARCH_NOON)
    outcome = {c.code + "/" + c.sender_msisdn: (c.status, c.reason) for c in Claim.objects.all()}
    assert outcome == {
        "UCA1KQ7T4D/254746100921": ("verified", ""),
        "UCA2MX9P3F/254727555578": ("verified", ""),
        "UCA3WQ6N7H/254712000678": ("verified", ""),
        "UCA3WQ6N7H/254700111222": ("needs_review", ClaimReason.CODE_ALREADY_USED),
        "UCA9ZK4TX7/254701999888": ("pending", ""),
        "UCA7AM3CD4/254722333444": ("pending", ""),
        "UCA8EF5GH6/254722333444": ("pending", ""),
        "UCA6PL2RBW/254733000222": ("pending", ""),
        # "I have sent the money via mpesa please check" had no code: it waited for a person
        # until the sender's code verified, then left the queue as superseded.
        "/254712000678": ("superseded", ClaimReason.UNPARSEABLE),
    }
    assert Claim.objects.get(code="UCA3WQ6N7H", status="verified").bundle.slug == "weekly-8-75gb"
    call_command("import_statement", str(DATA / "reconciliation" / "statement_march_overlap.csv"))
    claims_reconcile(trigger="test", now=MARCH_NOON + dt.timedelta(hours=4))
    typo = Claim.objects.get(code="UCA6PL2RBW")
    assert (typo.status, typo.reason, typo.suggested_receipt.code) == (
        "needs_review",
        ClaimReason.POSSIBLE_TYPO,
        "UCA6PL2R8W",
    )
    assert Claim.objects.get(code="UCA9ZK4TX7").reason == ClaimReason.UNKNOWN_CODE


@pytest.mark.parametrize(
    "text, recipient",
    [
        ("paid UCA1KQ7T4D from 0712 345 678, load 0733 444 555", "254733444555"),
        ("UCA1KQ7T4D nilitumia 0712345678 number ya kulipa, weka 0733444555", "254733444555"),
        ("UCA1KQ7T4D for 0733444555", "254733444555"),
        ("my number 0722 000 111 paid UCA1KQ7T4D please load 0733 444 555", "254733444555"),
    ],
)
def test_recipient_is_the_target_number_not_the_payer(text, recipient):
    read = svc.message_read(text=text, sent_at=SENT, sender_msisdn="254712345678")
    assert read.drafts[0].recipient_msisdn == recipient


def test_two_numbers_without_hints_are_flagged():
    read = svc.message_read(
        text="UCA1KQ7T4D 0722000111 0733444555", sent_at=SENT, sender_msisdn="254712345678"
    )
    assert read.drafts[0].ambiguous


def test_a_code_in_pieces_is_read_against_the_message_date():
    # UCA1KQ7T4D was paid on 10 Mar 2026, the day SENT: read in pieces then, not months later.
    text = "paid UCA1 KQ7\nT4D for 0733444555"
    read = svc.message_read(text=text, sent_at=SENT, sender_msisdn="254712345678")
    assert read.kind == "claim" and [d.code for d in read.drafts] == ["UCA1KQ7T4D"]
    late = svc.message_read(text=text, sent_at=SENT + dt.timedelta(days=90), sender_msisdn="254712345678")
    assert late.kind == "unparseable" and [d.code for d in late.drafts] == [""]  # for a person


def test_media_with_a_code_caption_is_a_claim_but_bare_media_is_not():
    caption = svc.message_read(
        text="IMG-20260310-WA0001.jpg (file attached)\nUCA1KQ7T4D for 0733444555",
        sent_at=SENT,
        sender_msisdn="254712345678",
        is_media=True,
    )
    assert caption.kind == "claim" and caption.drafts[0].recipient_msisdn == "254733444555"
    bare = svc.message_read(text="<Media omitted>", sent_at=SENT, sender_msisdn="254712345678", is_media=True)
    assert bare.kind == "media"


def test_unknown_author_repeating_a_claimed_code_is_a_quote():
    chat = (
        "10/03/2026, 08:03 - +254 746 100 921: paid UCA1KQ7T4D\n"
        "10/03/2026, 08:05 - Tillbook Shop: Thanks, UCA1KQ7T4D received\n"
        "10/03/2026, 08:06 - Tillbook Shop: and UCA5ZK4TX7 from whom?\n"
    )
    imp = svc.whatsapp_import(data=chat.encode(), filename="chat.txt")
    assert imp.counts["quotes"] == 1
    assert sorted(Claim.objects.values_list("code", "sender_msisdn")) == [
        ("UCA1KQ7T4D", "254746100921"),
        ("UCA5ZK4TX7", ""),
    ]
