"""reconciliation.parsers.whatsapp: WhatsApp chat exports (formats doc §5)."""

import datetime as dt
import io
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reconciliation.parsers.codes import find_codes
from reconciliation.parsers.sms import find_sms_in_text
from reconciliation.parsers.whatsapp import ChatExportError, parse_chat_export

NAIROBI = ZoneInfo("Africa/Nairobi")
DATA = Path(__file__).parent.parent / "data" / "whatsapp"


def load(name):
    return parse_chat_export((DATA / name).read_bytes(), name)


def at(*args):
    return dt.datetime(*args, tzinfo=NAIROBI)


def test_sample_files_hold_the_unicode_marks():
    assert "\u202f".encode() in (DATA / "android_us_12h.txt").read_bytes()
    assert "\u202f".encode() in (DATA / "android_uk_ampm.txt").read_bytes()
    gb = (DATA / "ios_gb_nocomma.txt").read_bytes()
    assert "\u200e".encode() in gb and "\u00a0".encode() in gb and "\u2011".encode() in gb


def test_android_us_12h_with_narrow_nbsp():
    export = load("android_us_12h.txt")
    assert (export.style, export.days_first, export.warnings) == ("android", False, [])
    first, paid, reply, media, pasted, deleted = export.messages
    assert first.is_system and first.author is None and first.sent_at == at(2024, 1, 4, 19, 2)
    assert paid.sent_at == at(2024, 1, 14, 10, 35)
    assert (paid.author, paid.author_phone) == ("+254 712 345 678", "254712345678")
    assert find_codes(paid.text) == ["SAE3YULR0Y"]
    assert reply.author == "Tillbook Sales" and reply.author_phone is None
    assert media.is_media and not media.is_system
    assert pasted.text == "sae3yulr0y\n0722 000 111"
    assert (pasted.line_no, pasted.index) == (5, 4)
    assert deleted.is_deleted and not deleted.is_media
    assert [m.index for m in export.messages] == list(range(6))


def test_android_uk_lower_case_am_pm_and_edited():
    export = load("android_uk_ampm.txt")
    assert (export.style, export.days_first) == ("android", True)
    media, recipient, edited, midnight, noon = export.messages
    assert media.sent_at == at(2023, 10, 9, 11, 11) and media.is_media
    assert recipient.author_phone == "254722000111"
    assert recipient.text == "Recipient Number: +254 712 345 678\nM-Pesa Code: TCG3YADR1X"
    assert edited.text == "sample message" and edited.edited
    assert edited.sent_at == at(2023, 10, 13, 18, 12)
    assert midnight.sent_at == at(2023, 10, 14, 0, 0)
    assert noon.sent_at == at(2023, 10, 14, 12, 30)


def test_android_24h_system_lines_and_pasted_sms():
    export = load("android_24h.txt")
    created, sms, subject, attachment, codes = export.messages
    assert created.is_system and created.author is None and created.sent_at == at(2024, 3, 6, 0, 45)
    assert subject.is_system and subject.author is None
    assert subject.text == 'Peter Otieno changed the subject from "Bundles" to "Deals: March"'
    assert sms.author == "Peter Otieno" and sms.text.endswith("recipient 0712 345 678")
    assert [s.code for s in find_sms_in_text(sms.text)] == ["TCG3YADR1X"]
    assert attachment.is_media
    # "SAE3-YULR0Y" is read from two pieces, so only near its own date (14 Jan 2024); on the day the
    # message was sent (12 Dec 2024) it is eleven months stale and only the whole code is read.
    assert find_codes(codes.text, when=dt.date(2024, 1, 15)) == ["SAE3YULR0Y", "TCG3YADR1X"]
    assert find_codes(codes.text, when=codes.sent_at) == ["TCG3YADR1X"]
    assert export.days_first is True


def test_ios_gb_without_comma():
    export = load("ios_gb_nocomma.txt")
    assert (export.style, export.days_first) == ("ios", True)
    notice, audio, multi, deleted, icon, joined, image = export.messages
    assert notice.is_system and notice.author is None
    assert notice.text.startswith("Messages and calls are end-to-end encrypted")
    assert audio.is_media and audio.author == "John Doe" and audio.sent_at == at(2022, 12, 31, 11, 40, 26)
    assert multi.text == "paid 50 bob\ncode RLV3ABCD1E"
    assert deleted.is_deleted and deleted.text == "This message was deleted."
    assert icon.is_system and icon.author is None
    assert joined.is_system and joined.sent_at == at(2023, 1, 1, 8, 0)
    assert image.author == "Nev" and image.is_media


def test_ios_12h_us_and_zip():
    plain = load("ios_12h.txt")
    zipped = load("ios_export.zip")
    assert plain == zipped
    assert (plain.style, plain.days_first) == ("ios", False)
    notice, code, number, edited = plain.messages
    assert notice.is_system and notice.sent_at == at(2023, 12, 27, 18, 51, 14)
    assert code.author == "Achieng" and code.sent_at == at(2024, 1, 14, 10, 35, 43)
    assert number.text == "for 0712-345-678 pls"
    assert edited.sent_at == at(2024, 1, 14, 15, 34, 9) and edited.text == "done" and edited.edited


def test_zip_detected_by_content_and_in_subfolder():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__MACOSX/._chat.txt", b"junk")
        archive.writestr("WhatsApp Chat - Shop/_chat.txt", b"[14/01/2024, 10:35:43] Ann: hi\n")
    export = parse_chat_export(buffer.getvalue())
    assert export.messages[0].author == "Ann"


def test_zip_with_single_other_txt():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("WhatsApp Chat with Ann.txt", b"14/01/2024, 10:35 - Ann: hi\n")
    assert parse_chat_export(buffer.getvalue(), "chat.zip").messages[0].text == "hi"


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        ((DATA / "no_txt.zip").read_bytes(), "no_txt.zip", "_chat.txt"),
        (b"PK\x03\x04 not really a zip", "x.zip", "could not be opened"),
        ((DATA / "junk.txt").read_bytes(), "junk.txt", "no WhatsApp messages found"),
        (b"", "empty.txt", "no WhatsApp messages found"),
        (b"\x00\xff\xfe\x01garbage\x9c", "bin.txt", "no WhatsApp messages found"),
        ("%PDF-1.4 binary", "file.pdf", "no WhatsApp messages found"),
    ],
)
def test_bad_uploads_raise_chat_export_error(data, filename, message):
    with pytest.raises(ChatExportError, match=message):
        parse_chat_export(data, filename)


def test_zip_with_several_txt_files_and_no_chat():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"x")
        archive.writestr("b.txt", b"y")
    with pytest.raises(ChatExportError, match="several"):
        parse_chat_export(buffer.getvalue(), "chat.zip")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("3/6/18, 1:55 p.m. - a: m", at(2018, 6, 3, 13, 55)),
        ("03-06-2018, 01.55 PM - a: m", at(2018, 6, 3, 13, 55)),
        ("13.06.18 21.25.15: a: m", at(2018, 6, 13, 21, 25, 15)),
        ("[06.13.18 21:25:15] a: m", at(2018, 6, 13, 21, 25, 15)),
        ("13.6.2018 klo 21.25.15 - a: m", at(2018, 6, 13, 21, 25, 15)),
        ("[2018/06/13, 21:25:15] a: m", at(2018, 6, 13, 21, 25, 15)),
        ("[13-06-18 21:25:15] a: m", at(2018, 6, 13, 21, 25, 15)),
        ("[13/06/18, 21:25:15] a: m", at(2018, 6, 13, 21, 25, 15)),
        ("13/06/2018, 1:55 p.m. - a: m", at(2018, 6, 13, 13, 55)),
        ("13/06/18, 21.25 - a: m", at(2018, 6, 13, 21, 25)),
        ("6/13/18, 21:25 - a: m", at(2018, 6, 13, 21, 25)),
        ("6/13/18, 9:25 PM - a: m", at(2018, 6, 13, 21, 25)),
        ("13.6.2018, 21:25 - a: m", at(2018, 6, 13, 21, 25)),
        ("23/06/2018, 01:55\u00a0p.\u00a0m. - a: m", at(2018, 6, 23, 13, 55)),
        ("\u200e[13/06/2018, 9:25:00\u202fAM] a: m", at(2018, 6, 13, 9, 25)),
        ("13/06/2018, 12:05 a.m. - a: m", at(2018, 6, 13, 0, 5)),
    ],
)
def test_date_variants_from_reference_parser(line, expected):
    export = parse_chat_export(line + "\n")
    (message,) = export.messages
    assert message.sent_at == expected
    assert (message.author, message.text) == ("a", "m")


def test_multiline_message_from_reference_parser():
    export = parse_chat_export(
        "23/06/2018, 01:55 p.m. - Loris: one\ntwo\n23/06/2018, 01:56 p.m. - Loris: three\n"
    )
    assert [m.text for m in export.messages] == ["one\ntwo", "three"]
    assert [m.line_no for m in export.messages] == [1, 3]


def test_day_month_detection_by_decreasing_numbers():
    # Neither number exceeds 12; the first number drops within 2024, so it is the day.
    text = "5/1/24, 10:00 - a: x\n2/2/24, 10:00 - a: y\n3/2/24, 10:00 - a: z\n"
    export = parse_chat_export(text)
    assert export.days_first is True
    assert [m.sent_at.date() for m in export.messages] == [
        dt.date(2024, 1, 5),
        dt.date(2024, 2, 2),
        dt.date(2024, 2, 3),
    ]


def test_day_month_detection_months_first_by_decreasing_second():
    text = "1/5/24, 10:00 - a: x\n2/2/24, 10:00 - a: y\n2/3/24, 10:00 - a: z\n"
    assert parse_chat_export(text).days_first is False


def test_day_month_undecidable_defaults_to_days_first_with_warning():
    export = parse_chat_export("3/4/24, 10:00 - a: x\n")
    assert export.days_first is True
    assert export.messages[0].sent_at == at(2024, 4, 3, 10, 0)
    assert any("assumed day first" in w for w in export.warnings)


def test_crlf_bom_cp1252_and_leading_junk():
    data = b"\xef\xbb\xbfExported chat\r\n14/01/2024, 10:35 - Ann: hi\r\nsecond line\r\n"
    export = parse_chat_export(data, "chat.txt")
    assert export.messages[0].text == "hi\nsecond line"
    assert any("before the first message" in w for w in export.warnings)
    cp1252 = "14/01/2024, 10:35 - Zoë: café\n".encode("cp1252")
    assert parse_chat_export(cp1252).messages[0].author == "Zoë"


def test_invalid_date_kept_as_text_with_warning():
    export = parse_chat_export("14/01/2024, 10:35 - Ann: hi\n31/02/2024, 10:35 - Ann: odd\n")
    assert len(export.messages) == 1
    assert export.messages[0].text.endswith("Ann: odd")
    assert any("not a real date" in w for w in export.warnings)


def test_non_kenyan_phone_author_has_no_author_phone():
    export = parse_chat_export("09/10/2023, 11:11 am - +44 7123 456789: hello\n")
    assert export.messages[0].author == "+44 7123 456789"
    assert export.messages[0].author_phone is None


def test_not_chronological_export_is_kept_in_file_order():
    export = parse_chat_export("14/01/2024, 10:35 - a: later\n13/01/2024, 09:00 - a: earlier\n")
    assert [m.text for m in export.messages] == ["later", "earlier"]
