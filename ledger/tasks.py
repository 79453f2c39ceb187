"""django-q2 entry points: thin wrappers over ledger.services."""

from __future__ import annotations

import logging
import time

import requests
from django.conf import settings

from console.kernel.redact import redact_text_strict
from ledger import services
from ledger.gateways import SimulatorGateway
from ledger.models import StkRequest, StkStatus

logger = logging.getLogger(__name__)


def stk_chase() -> dict:
    """Every minute: ask gateways about prompts that never got a callback (never overlaps)."""
    return services.stk_chase()


def callback_process(log_id: int) -> str | None:
    """Queued by the callback view: match, confirm with the gateway and apply one stored callback."""
    return services.callback_process_queued(log_id=log_id)


def callbacks_sweep() -> dict:
    """Every minute: callbacks stored but never processed, and successes awaiting confirmation."""
    return services.callbacks_sweep()


def simulator_callback_deliver(stk_id: int) -> int | None:
    """Play the simulated gateway: wait SIMULATOR_CALLBACK_DELAY seconds (the customer typing the
    PIN), then POST a Daraja-shaped callback to our own public callback URL, so it takes exactly
    the path a real callback takes. Safe to run twice: the second callback is a duplicate."""
    stk = StkRequest.objects.filter(pk=stk_id, gateway="simulator").first()
    if stk is None or stk.status != StkStatus.QUEUED or not stk.checkout_request_id:
        return None
    delay = float(settings.SIMULATOR_CALLBACK_DELAY)
    if delay > 0:
        time.sleep(delay)
    body = SimulatorGateway.build_callback(
        stk.checkout_request_id,
        stk.merchant_request_id,
        stk.amount,
        stk.phone,
        SimulatorGateway.result_code_for(stk.phone),
        sent_at=stk.created_at,  # the receipt's date agrees with the status query's across midnight
    )
    try:
        resp = requests.post(services.callback_url("simulator"), json=body, timeout=(5, 20))
    except requests.RequestException as exc:
        # The error names the callback URL, token included; django-q keeps failed tasks' errors.
        raise RuntimeError(redact_text_strict(f"Simulated callback not delivered: {exc}")) from None
    if resp.status_code >= 400:
        logger.warning("Simulated callback for STK %s answered HTTP %s", stk_id, resp.status_code)
    return resp.status_code
