"""Save and match / Import and match: a handful of claims is matched in the request, a file's worth
in the worker."""

from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from reconciliation.models import Claim, ClaimStatus

from .factories import code_for, receipt

pytestmark = pytest.mark.django_db
CHAT = Path(__file__).resolve().parents[1] / "data" / "reconciliation" / "chat_march_android.txt"


def test_pasted_message_is_matched_before_the_agent_sees_it(
    client_for, agent, bundles, django_capture_on_commit_callbacks
):
    r = receipt(code=code_for(timezone.localdate()), amount="150", paid_at=timezone.now())
    patch = mock.patch("django_q.tasks.async_task")
    with patch as queued, django_capture_on_commit_callbacks(execute=True):
        response = client_for(agent).post(
            reverse("admin:reconciliation_claim_paste_message"),
            {"sender": "0712 345 678", "text": f"{r.code} confirmed. load 0712345678"},
        )
    claim = Claim.objects.get(code=r.code)
    assert claim.status == ClaimStatus.VERIFIED  # no worker ran: matched in the request
    assert not any(c.args and c.args[0] == "reconciliation.tasks.reconcile" for c in queued.call_args_list)
    page = client_for(agent).get(response.url).content.decode()
    assert "Matched now" in page and "Not evaluated yet." not in page


def test_a_chat_over_the_limit_is_matched_in_the_background(
    client_for, agent, settings, django_capture_on_commit_callbacks
):
    settings.MATCH_INLINE_MAX_CLAIMS = 2
    patch = mock.patch("django_q.tasks.async_task")
    with patch as queued, django_capture_on_commit_callbacks(execute=True):
        response = client_for(agent).post(
            reverse("admin:reconciliation_claim_upload_chat"),
            {"file": SimpleUploadedFile("chat.txt", CHAT.read_bytes()), "business_number": "0782070228"},
            follow=True,
        )
    assert Claim.objects.count() > 2
    assert any(c.args and c.args[0] == "reconciliation.tasks.reconcile" for c in queued.call_args_list)
    assert "Matching in the background" in response.content.decode()
    assert not Claim.objects.exclude(code="").filter(explanation__has_key="signals").exists()


def test_a_small_chat_is_matched_at_once(client_for, agent, django_capture_on_commit_callbacks):
    patch = mock.patch("django_q.tasks.async_task")
    with patch as queued, django_capture_on_commit_callbacks(execute=True):
        response = client_for(agent).post(
            reverse("admin:reconciliation_claim_upload_chat"),
            {"file": SimpleUploadedFile("chat.txt", CHAT.read_bytes()), "business_number": "0782070228"},
            follow=True,
        )
    assert not any(c.args and c.args[0] == "reconciliation.tasks.reconcile" for c in queued.call_args_list)
    assert "Matched now" in response.content.decode()
    coded = Claim.objects.exclude(code="")
    assert coded.exists() and all((c.explanation or {}).get("signals") for c in coded)
