"""A big chat export is parsed in the worker, never in the web request; a bad one fails there
with its reason and saves nothing."""

import io
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from console.models import AuditEvent
from reconciliation.models import Claim, ImportStatus, WhatsAppImport, WhatsAppMessage
from reconciliation.services import claims as svc

pytestmark = pytest.mark.django_db
CHAT = Path(__file__).resolve().parents[1] / "data" / "reconciliation" / "chat_march_android.txt"
UPLOAD = reverse("admin:reconciliation_claim_upload_chat")


def test_a_big_export_is_queued_by_the_request_and_imported_by_the_worker(
    client_for, agent, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_IMPORT_INLINE_MAX_BYTES = 100  # this file is "big"
    with mock.patch("reconciliation.services.claims.parse_chat_export", wraps=svc.parse_chat_export) as parse:
        with (
            mock.patch("django_q.tasks.async_task") as queue,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = client_for(agent).post(
                UPLOAD,
                {"file": SimpleUploadedFile("chat.txt", CHAT.read_bytes()), "business_number": "0782070228"},
            )
        # The request kept the file and queued the work: nothing was parsed in it.
        imp = WhatsAppImport.objects.get()
        assert response.status_code == 302 and response.url == reverse(
            "admin:reconciliation_whatsappimport_change", args=[imp.pk]
        )
        assert parse.call_count == 0 and imp.status == ImportStatus.QUEUED
        assert imp.business_number == "254782070228" and not Claim.objects.exists()
        queue.assert_called_once_with("reconciliation.tasks.whatsapp_import_run", imp.pk)
    from reconciliation import tasks

    assert tasks.whatsapp_import_run(imp.pk) == ImportStatus.DONE
    imp.refresh_from_db()
    assert imp.counts["claims_new"] == 9 and imp.counts["from_business"] == 1
    assert tasks.whatsapp_import_run(imp.pk) == ImportStatus.DONE  # a second task does nothing
    assert Claim.objects.count() == 9
    page = client_for(agent).get(reverse("admin:reconciliation_whatsappimport_change", args=[imp.pk]))
    assert page.status_code == 200 and "254782070228" in page.content.decode()


def test_a_bad_big_export_fails_in_the_worker_with_its_reason_and_saves_nothing(
    client_for, agent, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_IMPORT_INLINE_MAX_BYTES = 10
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "x")
        z.writestr("b.txt", "y")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(agent).post(UPLOAD, {"file": SimpleUploadedFile("chat.zip", buf.getvalue())})
    imp = WhatsAppImport.objects.get()  # Q_SYNC: the worker ran on commit
    assert response.status_code == 302
    assert imp.status == ImportStatus.FAILED and "several .txt files" in imp.errors[0]
    assert not WhatsAppMessage.objects.exists() and not Claim.objects.exists()
    assert AuditEvent.objects.filter(action="whatsapp.refused", object_id=str(imp.pk)).exists()


def test_a_usual_export_still_imports_at_once_with_errors_on_the_form(client_for, agent):
    response = client_for(agent).post(UPLOAD, {"file": SimpleUploadedFile("chat.txt", b"no messages here")})
    assert response.status_code == 200 and "not a WhatsApp chat export" in response.content.decode()
    assert not WhatsAppImport.objects.exists()
