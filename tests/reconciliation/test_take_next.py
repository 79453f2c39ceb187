"""The claims work queue: take next, holds, release, take over, and decisions respecting holds."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from console.models import AuditEvent
from reconciliation.models import Claim, ClaimStatus
from reconciliation.services import decisions, queue
from reconciliation.services.errors import CLAIM_HELD_BY_OTHER, QUEUE_EMPTY, ClaimHeldByOther, QueueEmpty

from .factories import NOW, ClaimFactory, receipt

pytestmark = pytest.mark.django_db


def open_claim(minutes_ago, status=ClaimStatus.NEEDS_REVIEW, **kw):
    return ClaimFactory(status=status, claimed_at=NOW - dt.timedelta(minutes=minutes_ago), **kw)


def test_takes_the_oldest_needs_review_claim_and_holds_it_ten_minutes(agent):
    open_claim(10)
    oldest = open_claim(50)
    open_claim(90, status=ClaimStatus.VERIFIED)
    taken = queue.claim_take_next(user=agent, now=NOW)
    assert taken.pk == oldest.pk
    oldest.refresh_from_db()
    assert oldest.held_by == agent and oldest.held_until == NOW + dt.timedelta(minutes=10)
    event = AuditEvent.objects.get(action="claim.taken")
    assert event.actor == agent and event.object_id == str(oldest.pk)


def test_needs_review_comes_before_an_older_pending_claim(agent):
    open_claim(120, status=ClaimStatus.PENDING)
    review = open_claim(5)
    assert queue.claim_take_next(user=agent, now=NOW).pk == review.pk


def test_pending_claims_are_taken_when_no_review_is_left(agent):
    pending = open_claim(30, status=ClaimStatus.PENDING)
    assert queue.claim_take_next(user=agent, now=NOW).pk == pending.pk


def test_a_claim_held_by_someone_else_is_skipped(agent, finance):
    first = open_claim(50)
    second = open_claim(40)
    assert queue.claim_take_next(user=finance, now=NOW).pk == first.pk
    assert queue.claim_take_next(user=agent, now=NOW).pk == second.pk


def test_an_expired_hold_is_free_again(agent, finance):
    claim = open_claim(50)
    queue.claim_take_next(user=finance, now=NOW)
    later = NOW + dt.timedelta(minutes=11)
    taken = queue.claim_take_next(user=agent, now=later)
    assert taken.pk == claim.pk and taken.held_by == agent


def test_empty_queue_raises_with_what_to_do(agent, finance):
    open_claim(50)
    queue.claim_take_next(user=finance, now=NOW)
    with pytest.raises(QueueEmpty) as exc:
        queue.claim_take_next(user=agent, now=NOW)
    assert exc.value.message == QUEUE_EMPTY


def test_taking_next_twice_keeps_your_own_claim(agent):
    claim = open_claim(50)
    open_claim(40)
    assert queue.claim_take_next(user=agent, now=NOW).pk == claim.pk
    assert queue.claim_take_next(user=agent, now=NOW + dt.timedelta(minutes=1)).pk == claim.pk


def test_release_frees_the_claim_for_the_next_agent(agent, finance):
    claim = open_claim(50)
    queue.claim_take_next(user=agent)
    queue.claim_release(claim_id=claim.pk, user=agent)
    claim.refresh_from_db()
    assert claim.held_by is None and claim.held_until is None
    assert AuditEvent.objects.filter(action="claim.released", actor=agent).exists()
    assert queue.claim_take_next(user=finance).pk == claim.pk


def test_only_the_holder_can_release(agent, finance):
    claim = open_claim(50)
    queue.claim_take_next(user=agent)
    with pytest.raises(ClaimHeldByOther):
        queue.claim_release(claim_id=claim.pk, user=finance)
    claim.refresh_from_db()
    assert claim.held_by == agent


def test_reject_by_a_non_holder_is_refused_with_who_and_until(agent, finance):
    claim = open_claim(50)
    held = queue.claim_take_next(user=agent)
    with pytest.raises(ClaimHeldByOther) as exc:
        decisions.claim_reject(claim_id=claim.pk, reason="fake", user=finance)
    until = timezone.localtime(held.held_until).strftime("%H:%M")
    assert exc.value.message == CLAIM_HELD_BY_OTHER.format(who="agent", until=until)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW


def test_take_over_then_reject_works_and_the_decision_ends_the_hold(agent, finance):
    claim = open_claim(50)
    queue.claim_take_next(user=agent)
    queue.claim_take_over(claim_id=claim.pk, user=finance)
    assert AuditEvent.objects.get(action="claim.taken_over").before["held_by"] == "agent"
    decisions.claim_reject(claim_id=claim.pk, reason="not our till", user=finance)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.REJECTED and claim.held_by is None and claim.held_until is None


def test_verify_by_the_holder_releases_the_hold(bundles, agent):
    r = receipt(amount="199")  # covers the 150 bundle: an underpayment never verifies
    claim = ClaimFactory(code=r.code, status=ClaimStatus.NEEDS_REVIEW)
    queue.claim_take_next(user=agent)
    decisions.claim_verify(
        claim_id=claim.pk, receipt_code=r.code, amount="199", bundle_id=bundles["daily-2gb"].pk, user=agent
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.VERIFIED and claim.held_by is None


def test_verify_by_a_non_holder_is_refused(bundles, agent, finance):
    r = receipt(amount="99")
    claim = ClaimFactory(code=r.code, status=ClaimStatus.NEEDS_REVIEW)
    queue.claim_take_next(user=agent)
    with pytest.raises(ClaimHeldByOther):
        decisions.claim_verify(
            claim_id=claim.pk,
            receipt_code=r.code,
            amount="99",
            bundle_id=bundles["daily-2gb"].pk,
            user=finance,
        )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW and claim.order is None


# ---- admin ------------------------------------------------------------------------------------
def test_take_next_button_redirects_to_the_held_claim(agent, client_for):
    claim = open_claim(50)
    response = client_for(agent).post(reverse("admin:reconciliation_claim_take_next"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:reconciliation_claim_change", args=[claim.pk])
    page = client_for(agent).get(response["Location"]).content.decode()
    assert "You hold this claim until" in page


def test_take_next_on_an_empty_queue_says_what_to_do(agent, client_for):
    response = client_for(agent).post(reverse("admin:reconciliation_claim_take_next"), follow=True)
    assert QUEUE_EMPTY in response.content.decode()


def test_take_next_by_get_only_asks(agent, client_for):
    claim = open_claim(50)
    response = client_for(agent).get(reverse("admin:reconciliation_claim_take_next"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'method="post"' in html and "csrfmiddlewaretoken" in html
    claim.refresh_from_db()
    assert claim.held_by is None  # a link from anywhere takes nothing


def test_release_by_get_only_asks_then_post_releases(agent, client_for):
    claim = open_claim(50)
    queue.claim_take_next(user=agent)
    c = client_for(agent)
    url = reverse("admin:reconciliation_claim_release", args=[claim.pk])
    response = c.get(url)
    assert response.status_code == 200 and "Release" in response.content.decode()
    claim.refresh_from_db()
    assert claim.held_by == agent  # the GET changed nothing
    assert c.post(url, {"confirmed": "1"}).status_code == 302
    claim.refresh_from_db()
    assert claim.held_by is None


def test_state_changes_refuse_a_post_without_the_csrf_token(agent):
    from django.test import Client

    claim = open_claim(50)
    c = Client(enforce_csrf_checks=True)
    c.force_login(agent)
    assert c.post(reverse("admin:reconciliation_claim_take_next")).status_code == 403
    claim.refresh_from_db()
    assert claim.held_by is None


def test_claim_page_shows_the_holder_and_a_take_over_button_to_others(agent, finance, client_for):
    claim = open_claim(50)
    queue.claim_take_next(user=agent)
    page = client_for(finance).get(reverse("admin:reconciliation_claim_change", args=[claim.pk]))
    html = page.content.decode()
    assert "Held by agent until" in html
    assert reverse("admin:reconciliation_claim_take_over", args=[claim.pk]) in html


def test_changelist_shows_who_holds_a_claim(agent, finance, client_for):
    open_claim(50)
    queue.claim_take_next(user=agent)
    html = client_for(finance).get(reverse("admin:reconciliation_claim_changelist")).content.decode()
    assert 'data-testid="held-by">agent until' in html


def test_reject_page_for_a_non_holder_redirects_with_the_hold_message(agent, finance, client_for):
    claim = open_claim(50)
    queue.claim_take_next(user=agent)
    response = client_for(finance).get(
        reverse("admin:reconciliation_claim_reject", args=[claim.pk]), follow=True
    )
    assert "take it over first" in response.content.decode()


def test_take_over_asks_first_then_holds(agent, finance, client_for):
    claim = open_claim(50)
    queue.claim_take_next(user=agent)
    c = client_for(finance)
    url = reverse("admin:reconciliation_claim_take_over", args=[claim.pk])
    assert "Take over" in c.get(url).content.decode()
    claim.refresh_from_db()
    assert claim.held_by == agent  # the GET changed nothing
    c.post(url, {"confirmed": "1"})
    claim.refresh_from_db()
    assert claim.held_by == finance


def test_manager_cannot_take_claims(manager, client_for):
    open_claim(50)
    response = client_for(manager).post(reverse("admin:reconciliation_claim_take_next"))
    assert response.status_code == 403
    assert not Claim.objects.filter(held_by=manager).exists()


# ---- the race ---------------------------------------------------------------------------------
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_agents_taking_next_at_once_get_different_claims(agent, finance):
    first = open_claim(50)
    second = open_claim(40)
    barrier = threading.Barrier(2)
    taken, errors = [], []

    def take(user):
        try:
            barrier.wait()
            taken.append(queue.claim_take_next(user=user).pk)
        except Exception as exc:  # collected for the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(u,)) for u in (agent, finance)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(taken) == sorted([first.pk, second.pk])


def test_taking_a_claim_says_you_hold_it_once(agent, client_for):
    claim = open_claim(50)
    response = client_for(agent).post(reverse("admin:reconciliation_claim_take_next"), follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("admin:reconciliation_claim_change", args=[claim.pk])
    assert page.lower().count("you hold") == 1
