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


def test_checks_are_named_in_plain_words(client_for, agent, bundles):
    from reconciliation.services.evaluate import SIGNAL_LABELS
    from reconciliation.services.matcher import claims_reconcile

    from .factories import receipt

    r = receipt(amount="150", paid_at=timezone.now() - dt.timedelta(minutes=3))
    claim = ClaimFactory(code=r.code, claimed_at=timezone.now())
    claims_reconcile(trigger="test")
    claim.refresh_from_db()
    names = [s["name"] for s in claim.explanation["signals"]]
    assert "minutes_between_payment_and_claim" in names and "code_date_plausible" in names
    body = (
        client_for(agent).get(reverse("admin:reconciliation_claim_change", args=[claim.pk])).content.decode()
    )
    labels = [label for label in (SIGNAL_LABELS[n] for n in names)]
    assert all(label in body for label in labels)
    assert "Minutes between payment and claim" in body and "Code date matches the message" in body
    # The code words are data attributes only, never the text an agent reads.
    assert ">minutes_between_payment_and_claim<" not in body and ">code_date_plausible<" not in body


def test_every_signal_the_matcher_makes_has_a_label():
    import inspect
    import re

    from reconciliation.services import evaluate

    made = set(re.findall(r'_signal\(\s*"(\w+)"', inspect.getsource(evaluate)))
    made |= {"amount_matches_bundle", "minutes_between_payment_and_claim"}  # named in a loop
    assert made and made <= set(evaluate.SIGNAL_LABELS)


def test_the_filter_form_keeps_the_status_picked(client_for, agent, queue):
    body = client_for(agent).get(reverse(LIST), {"status__exact": "all"}).content.decode()
    assert '<input type="hidden" name="status__exact" value="all"' in body
