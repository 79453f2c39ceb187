"""The claims list an agent opens: the open queue by default, needs review before pending."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from reconciliation.models import ClaimStatus

from .factories import ClaimFactory

pytestmark = pytest.mark.django_db
LIST = "admin:reconciliation_claim_changelist"


def _listed(response):
    return [c.pk for c in response.context["cl"].result_list]


@pytest.fixture
def queue():
    now = timezone.now()
    review = ClaimStatus.NEEDS_REVIEW
    return {
        "old_pending": ClaimFactory(claimed_at=now - dt.timedelta(hours=5)),
        "new_review": ClaimFactory(claimed_at=now - dt.timedelta(minutes=10), status=review),
        "old_review": ClaimFactory(claimed_at=now - dt.timedelta(hours=2), status=review),
        "new_pending": ClaimFactory(claimed_at=now - dt.timedelta(minutes=1)),
        "verified": ClaimFactory(claimed_at=now - dt.timedelta(days=3), status=ClaimStatus.VERIFIED),
        "rejected": ClaimFactory(claimed_at=now - dt.timedelta(days=2), status=ClaimStatus.REJECTED),
    }


def test_default_is_the_open_queue_needs_review_then_pending_oldest_first(client_for, agent, queue):
    response = client_for(agent).get(reverse(LIST))
    q = queue
    assert _listed(response) == [
        q["old_review"].pk,
        q["new_review"].pk,
        q["old_pending"].pk,
        q["new_pending"].pk,
    ]
    body = response.content.decode()
    assert "Open: needs review, then pending" in body


def test_all_shows_decided_claims_after_the_open_ones(client_for, agent, queue):
    response = client_for(agent).get(reverse(LIST), {"status__exact": "all"})
    listed = _listed(response)
    assert len(listed) == 6
    assert listed[-2:] == [queue["verified"].pk, queue["rejected"].pk]


def test_one_status_as_the_dashboard_links_it(client_for, agent, queue):
    response = client_for(agent).get(reverse(LIST), {"status__exact": "verified"})
    assert _listed(response) == [queue["verified"].pk]


def test_age_column_shows_age_not_status(client_for, agent, queue):
    body = client_for(agent).get(reverse(LIST), {"status__exact": "all"}).content.decode()
    assert "2 h 0 min" in body and "1 min" in body
    columns = list(client_for(agent).get(reverse(LIST)).context["cl"].list_display)
    assert "display_held" in columns and "display_claimed" not in columns
