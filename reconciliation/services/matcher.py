"""The matcher: claims against till receipts, set-based, precision first.

Per batch of open claims (pending, or needing review because the code was unknown or looked
like a typo) it runs a handful of queries: the claims; the receipts for all their codes
(one ``code__in``); the verified claims holding those receipts; the unmatched receipts in a
bounded time window (for look-alike codes, compared in Python by ``lookalike_key``); the
active bundles and their price history (catalog.prices.PriceBook). Decisions are pure
(evaluate.claim_evaluate, where the outcomes are listed); only a verification writes per claim
(decisions.claim_verify_auto: an order and a journal entry, under row locks).

Verified and rejected claims are never touched here. Each run first settles the receipts booked
as unallocated before their STK payment was confirmed (settlement.stk_settlements_sweep).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter, defaultdict

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max, Q, Value
from django.db.models.functions import Replace, Upper
from django.utils import timezone

from catalog.models import Bundle, BundlePriceChange
from catalog.prices import PriceBook
from console.kernel import queue
from console.kernel.exceptions import DomainError
from console.kernel.plausible import clean_text
from ledger.models import Order
from reconciliation.models import Claim, ClaimReason, ClaimStatus, ReconciliationRun, RunStatus, TillReceipt
from reconciliation.parsers import LOOKALIKE_SLIPS, lookalike_key

from . import decisions
from .claim_status import claim_status_set
from .corrections import superseded_reopen
from .errors import ReconciliationError, VerificationInvalid
from .evaluate import (
    LOOKALIKE_DAYS_BEFORE,
    LOOKALIKE_HOURS_AFTER,
    Context,
    Decision,
    claim_evaluate,
    other_payee_problem,
)
from .runs import run_finish, run_heartbeat, run_open
from .settlement import stk_payments, stk_settlements_sweep

__all__ = ["claim_evaluate", "claims_reconcile", "open_claims", "other_payee_problem", "reconcile_later"]

BATCH = 2000
# Verifications are written in sets of this many claims, one transaction each: short enough that
# an agent's verification (which waits for the journal counter) is never held up for long.
VERIFY_SET = getattr(settings, "MATCHER_VERIFY_SET", 200)
OPEN_REASONS = (ClaimReason.UNKNOWN_CODE, ClaimReason.POSSIBLE_TYPO)
VERIFY_FAILED = "Automatic verification failed ({error}); a person must check this claim."
# Scheduled runs settle receipts recorded this recently (a manual run settles all of them).
SWEEP_WINDOW = dt.timedelta(days=getattr(settings, "GATEWAY_TIME_WINDOW_DAYS", 3) + 1)
# How long before a claim its STK prompt may have been sent (the claim follows the payment).
STK_LOOKBACK = dt.timedelta(days=getattr(settings, "GATEWAY_TIME_WINDOW_DAYS", 3))
# Scheduled runs examine only the claims whose evidence changed since the previous run; every
# MATCHER_FULL_RUN_EVERY seconds (and on any other trigger) a run examines every open claim.
FULL_RUN_EVERY = dt.timedelta(seconds=getattr(settings, "MATCHER_FULL_RUN_EVERY", 3600))
CHANGES_TRIGGERS = ("schedule",)
# Changes are looked for from this long before the previous run started, so a transaction open
# then (rows stamped earlier, committed later) is still seen; imports and new receipts also queue
# a run for their codes after they commit. A claim the previous run itself changed is examined
# once more by the next run, then left alone until its evidence changes.
CHANGES_OVERLAP = dt.timedelta(seconds=30)


def open_claims():
    return Claim.objects.filter(
        Q(status=ClaimStatus.PENDING) | Q(status=ClaimStatus.NEEDS_REVIEW, reason__in=OPEN_REASONS)
    )


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def _lookalike_key_sql(field: str):
    """parsers.lookalike_key of a stored (normalised) code, in SQL: the slips replaced."""
    return functools.reduce(
        lambda expr, slip: Replace(expr, Value(slip[0]), Value(slip[1])),
        LOOKALIKE_SLIPS.items(),
        Upper(field),
    )


def _context(claims: list[Claim], now: dt.datetime, prices: PriceBook) -> Context:
    codes = {c.code for c in claims}
    receipts = {r.code: r for r in TillReceipt.objects.filter(code__in=codes)}
    used_by = dict(
        Claim.objects.filter(status=ClaimStatus.VERIFIED, receipt__code__in=codes).values_list(
            "receipt_id", "pk"
        )
    )
    lookalikes: dict[str, list[TillReceipt]] = defaultdict(list)
    without = [c for c in claims if c.code not in receipts]
    if without:
        low = min(c.claimed_at for c in without) - dt.timedelta(days=LOOKALIKE_DAYS_BEFORE)
        high = max(c.claimed_at for c in without) + dt.timedelta(hours=LOOKALIKE_HOURS_AFTER)
        wanted = {lookalike_key(c.code) for c in without}
        window = TillReceipt.objects.unmatched().filter(paid_at__gte=low, paid_at__lte=high)
        # The database keeps only the receipts whose key is wanted (the window may hold 100k).
        window = window.annotate(lookalike=_lookalike_key_sql("code")).filter(lookalike__in=wanted)
        for receipt in window.only("pk", "code", "amount", "paid_at", "order_id"):
            key = lookalike_key(receipt.code)
            if key in wanted:
                lookalikes[key].append(receipt)
    # Prompts are searched by receipt only among those sent shortly before a batch of recent claims
    # (StkRequest.receipt is unindexed); orders and STK entries are searched for every batch.
    first, last = min(c.claimed_at for c in claims), max(c.claimed_at for c in claims)
    between = (first - STK_LOOKBACK, last) if last - first <= STK_LOOKBACK else None
    return Context(
        now=now,
        grace=dt.timedelta(seconds=getattr(settings, "CLAIM_GRACE", 7200)),
        receipts=receipts,
        used_by=used_by,
        lookalikes=lookalikes,
        prices=prices,
        stk_paid=stk_payments(codes, sent_between=between),
        order_of=dict(
            Order.objects.filter(mpesa_receipt__in=codes).values_list("mpesa_receipt", "reference")
        ),
    )


_FIELDS = ["status", "reason", "explanation", "suggested_receipt", "bundle", "updated_at"]


def _changes_since(now: dt.datetime) -> dt.datetime | None:
    """Where a scheduled run may start looking for changes, or None when it must examine every
    open claim: no finished full run within FULL_RUN_EVERY. One query over the runs of that
    period only (indexed by started_at: a run a minute piles up)."""
    runs = ReconciliationRun.objects.filter(status=RunStatus.DONE, started_at__gte=now - FULL_RUN_EVERY)
    found = runs.aggregate(
        last_full=Max("started_at", filter=Q(scope="all")),
        previous=Max("started_at", filter=Q(scope__in=["all", "changed"])),
    )
    if found["last_full"] is None:
        return None
    return found["previous"] - CHANGES_OVERLAP


def _claims_with_new_evidence(since: dt.datetime, now: dt.datetime) -> list[int] | None:
    """The open claims whose evidence changed since `since` (None: every open claim).

    Evidence is what claim_evaluate reads: the claim itself (edited, new), receipts with its code
    or a look-alike code (new, or tied to an order since), orders and claims with its code (paid,
    verified, rejected, refunded since), the price book, and the grace deadline passing.
    """
    if (
        Bundle.objects.filter(updated_at__gte=since).exists()
        or BundlePriceChange.objects.filter(changed_at__gte=since).exists()
    ):
        return None  # prices decide every claim's bundle
    codes = set(TillReceipt.objects.filter(created_at__gte=since).values_list("code", flat=True))
    codes |= set(Claim.objects.filter(updated_at__gte=since).values_list("code", flat=True))
    orders = Order.objects.filter(updated_at__gte=since)
    codes |= set(orders.exclude(mpesa_receipt=None).values_list("mpesa_receipt", flat=True))
    codes |= set(TillReceipt.objects.filter(order__in=orders).values_list("code", flat=True))
    keys = {lookalike_key(code) for code in codes}
    grace = dt.timedelta(seconds=getattr(settings, "CLAIM_GRACE", 7200))
    due_from, due_to = since - grace, now - grace  # grace deadline passed since `since`
    return [
        pk
        for pk, code, claimed_at, updated_at in open_claims().values_list(
            "pk", "code", "claimed_at", "updated_at"
        )
        if updated_at >= since
        or code in codes
        or due_from <= claimed_at <= due_to
        or lookalike_key(code) in keys
    ]


def claims_reconcile(
    *,
    trigger: str = "manual",
    codes: list[str] | None = None,
    now: dt.datetime | None = None,
    batch: int = BATCH,
) -> ReconciliationRun:
    """Match every open claim (or only those for ``codes``). Idempotent: re-running changes
    nothing that is already right; verified and rejected claims are never touched.

    Each verification is its own short transaction (locks: claim, then receipt) inside a
    savepoint: one that fails (a domain or database error) sends its claim to needs review
    (verify_failed, counted) and the run goes on. The other outcomes are written with one bulk
    update per batch. Before matching, receipts booked as unallocated before their STK payment
    was confirmed are settled (those recorded within SWEEP_WINDOW, and on a scheduled run after a
    recent full run only those that may have become settleable since it; all of them on a manual
    run), counted as stk_settled. Returns the ReconciliationRun.
    """
    now = now or timezone.now()
    since = _changes_since(timezone.now()) if codes is None and trigger in CHANGES_TRIGGERS else None
    # Receipts booked as unallocated before their STK payment was confirmed are its settlement;
    # like the claims, a scheduled run after a recent full run looks only at what changed since.
    window = None if trigger == "manual" else timezone.now() - SWEEP_WINDOW
    swept = stk_settlements_sweep(codes=codes, since=window, changed_since=since)
    if codes is not None and not open_claims().filter(code__in=codes).exists():
        # A receipt nobody has claimed yet (the usual case for a C2B burst): no run to record.
        return ReconciliationRun(trigger=trigger[:20], counts={"stk_settled": swept} if swept else {})
    run = run_open(trigger=trigger)  # also closes runs that died (killed worker) as abandoned
    counts: Counter = Counter({"stk_settled": swept} if swept else {})
    reopened = superseded_reopen()  # a superseded code that reached the till after all
    if reopened:
        counts["superseded_reopened"] = reopened
    only = None
    if codes is not None:
        run.scope = "codes"
    elif since is not None and not reopened:
        only = _claims_with_new_evidence(since, now)
        run.scope = "changed" if only is not None else "all"
    prices = PriceBook.load()
    last_id = 0
    try:
        while True:
            qs = open_claims().filter(pk__gt=last_id)
            if codes is not None:
                qs = qs.filter(code__in=codes)
            if only is not None:
                if not only:
                    break
                qs = qs.filter(pk__in=only)
            claims = list(qs.select_related(None).order_by("pk")[:batch])
            if not claims:
                break
            last_id = claims[-1].pk
            _reconcile_batch(sorted(claims, key=lambda c: (c.claimed_at, c.pk)), now, prices, counts)
            run_heartbeat(run)
            if len(claims) < batch:
                break
    except Exception as exc:
        run.error = repr(exc)[:2000]
        raise
    finally:
        run_finish(run, counts=dict(counts))
    return run


def _reconcile_batch(claims: list[Claim], now, prices: PriceBook, counts: Counter) -> None:
    """Decide every claim of the batch; the verifications are written together
    (decisions.claims_verify_auto_many, one transaction), the other outcomes by one bulk update.

    A claim whose code (or a look-alike of it) is the receipt of a verification in this batch is
    decided after those verifications are written, as if the claims were taken one by one in
    order: it sees that receipt used. A verification the set refuses, or the whole set when it
    fails, is retried one claim at a time (_verify_one), which says why.
    """
    ctx = _context(claims, now, prices)
    changed: list[Claim] = []
    to_verify: list[tuple[Claim, Decision, dict]] = []
    after: list[Claim] = []
    keys: set[str] = set()
    for claim in claims:
        counts["examined"] += 1
        if claim.code and lookalike_key(claim.code) in keys:
            after.append(claim)
            continue
        decision = claim_evaluate(claim, ctx)
        explanation = decision.explanation(claim)
        if decision.status == ClaimStatus.VERIFIED:
            to_verify.append((claim, decision, explanation))
            keys.add(lookalike_key(decision.receipt.code))
        else:
            _record(claim, decision, explanation, now, counts, changed)
    for start in range(0, len(to_verify), VERIFY_SET):
        _verify_set(to_verify[start : start + VERIFY_SET], ctx, now, counts, changed)
    for claim in after:
        decision = claim_evaluate(claim, ctx)
        explanation = decision.explanation(claim)
        if decision.status == ClaimStatus.VERIFIED:
            _verify_one(claim, decision, explanation, ctx, now, counts, changed)
        else:
            _record(claim, decision, explanation, now, counts, changed)
    if changed:
        # Only claims still open are updated: a person or another run may have decided one
        # meanwhile. Locked, so a verification in progress is waited for and then re-checked (a
        # plain read would see it uncommitted and the UPDATE would write over it once it commits).
        with transaction.atomic():
            still_open = set(
                open_claims()
                .filter(pk__in=[c.pk for c in changed])
                .select_for_update()
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            Claim.objects.bulk_update([c for c in changed if c.pk in still_open], _FIELDS, batch_size=500)
        counts["changed"] += len(changed)


def _verify_set(to_verify: list[tuple[Claim, Decision, dict]], ctx: Context, now, counts, changed) -> None:
    """Verify a set of claims in one transaction; what it refuses goes one by one."""
    items = [(c.pk, d.receipt.pk, d.bundle.pk, e) for c, d, e in to_verify]
    try:
        # A savepoint: a failed set leaves the run's transaction (if any) usable.
        left = {item[0] for item in decisions.claims_verify_auto_many(items)}
    except (DomainError, DatabaseError):
        left = {item[0] for item in items}  # each is tried on its own and says why
    for claim, decision, explanation in to_verify:
        if claim.pk in left:
            _verify_one(claim, decision, explanation, ctx, now, counts, changed)
        else:
            ctx.used_by[decision.receipt.pk] = claim.pk
            counts["verified"] += 1


def _verify_one(
    claim: Claim, decision: Decision, explanation: dict, ctx: Context, now, counts, changed
) -> None:
    """Verify one claim in its own transaction; a refusal decides the claim otherwise (recorded)."""
    try:
        # A savepoint: a failed verification leaves the run's transaction (if any) usable.
        with transaction.atomic():
            decisions.claim_verify_auto(
                claim_id=claim.pk,
                receipt_id=decision.receipt.pk,
                bundle_id=decision.bundle.pk,
                explanation=explanation,
            )
    except VerificationInvalid as exc:
        # Refused on its merits (the pasted SMS names another payee): not a race.
        decision = _verify_failed(decision, exc)
    except ReconciliationError:
        # Another worker or agent used the receipt (or decided the claim) first.
        counts["lost_race"] += 1
        ctx.used_by.setdefault(decision.receipt.pk, -1)
        decision = claim_evaluate(claim, ctx)
    except (DomainError, DatabaseError) as exc:
        # One bad claim never stops a run: it waits for a person with the reason.
        decision = _verify_failed(decision, exc)
    else:
        ctx.used_by[decision.receipt.pk] = claim.pk
        counts["verified"] += 1
        return
    _record(claim, decision, decision.explanation(claim), now, counts, changed)


def _record(claim: Claim, decision: Decision, explanation: dict, now, counts: Counter, changed: list) -> None:
    """Count a decision other than a verification and stage the claim's change (if any) for the
    batch's bulk update."""
    counts[str(decision.reason or decision.status)] += 1
    new = (
        decision.status,
        decision.reason,
        explanation,
        getattr(decision.suggested, "pk", None),
        getattr(decision.bundle, "pk", None),
    )
    old = (claim.status, claim.reason, claim.explanation, claim.suggested_receipt_id, claim.bundle_id)
    if new != old:
        claim_status_set(claim, decision.status)
        claim.reason, claim.explanation = decision.reason, explanation
        claim.suggested_receipt_id = new[3]
        claim.bundle_id = new[4]
        claim.updated_at = now
        changed.append(claim)


def _verify_failed(decision: Decision, exc: Exception) -> Decision:
    error = clean_text(getattr(exc, "message", None) or str(exc) or type(exc).__name__, 300)
    return Decision(
        ClaimStatus.NEEDS_REVIEW,
        ClaimReason.VERIFY_FAILED,
        suggested=decision.receipt,
        signals=decision.signals,
        summary=VERIFY_FAILED.format(error=error),
    )


def reconcile_later(*, trigger: str, codes: list[str] | None = None) -> None:
    """Queue a matcher run for ``codes`` once the current transaction commits. A hint: the
    every-minute run also looks at whatever changed since its last run, so the enqueue need not
    wait for the disk (console.kernel.queue.hint)."""
    codes = sorted(set(codes)) if codes else None
    transaction.on_commit(lambda: queue.hint("reconciliation.tasks.reconcile", trigger=trigger, codes=codes))
