"""HTTP for the gateways: the retrying session, error mapping and the time budget of one request."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from .base import GatewayUnavailable
from .clean import safe_text, strict_json_loads

# Below this many seconds left, no new HTTP call is started: it could not finish anyway.
MIN_CALL_SECONDS = 0.5


def response_json(resp: requests.Response) -> Any:
    """The JSON of a gateway answer, or None when it is not strict JSON (NaN, too deep, binary…)."""
    content = resp.content or b""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = resp.text
    if not text.strip():
        return None
    try:
        return strict_json_loads(text)
    except ValueError:
        return None


def snippet(resp: requests.Response, limit: int = 200) -> str:
    text = safe_text((resp.text or "").replace("\n", " "), limit + 1)
    return text[:limit] + ("…" if len(text) > limit else "")


# ------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------
RETRY_STATUSES = (502, 503, 504)


def session_with_retries(
    retries: int = 2,
    backoff_factor: float = 0.3,
    allowed_methods: Iterable[str] = ("GET",),
    status_forcelist: Iterable[int] = RETRY_STATUSES,
) -> requests.Session:
    """A Session that retries idempotent calls on connect errors and 502/503/504.

    Only methods in ``allowed_methods`` (default GET: token and status look-ups) are retried on
    read errors and bad statuses. Use ``retries=0`` for the session that sends STK pushes: a POST
    that charges must never be repeated automatically. Callers always pass ``timeout=(connect,
    read)`` themselves; after the last retry the final response is returned (not raised) so the
    caller maps it to GatewayUnavailable.
    """
    session = requests.Session()
    if retries > 0:
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff_factor,
            status_forcelist=tuple(status_forcelist),
            allowed_methods=frozenset(m.upper() for m in allowed_methods),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
    else:
        retry = Retry(total=0, connect=0, read=0, status=0, redirect=0, other=0, raise_on_status=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def unavailable_from_exception(
    gateway: str, action: str, exc: requests.RequestException, *, charging: bool
) -> GatewayUnavailable:
    """Map a requests exception to GatewayUnavailable, flagging if a charge may have gone through."""
    if isinstance(exc, requests.ConnectTimeout):
        return GatewayUnavailable(
            f"{gateway} did not answer in time while connecting ({action}); try again later"
        )
    if isinstance(exc, requests.Timeout):
        if charging:
            return GatewayUnavailable(
                f"{gateway} did not answer in time ({action}). The prompt may still reach the phone: "
                "check the payment status before sending another prompt",
                ambiguous=True,
            )
        return GatewayUnavailable(f"{gateway} did not answer in time ({action}); try again later")
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if charging and not isinstance(reason, NewConnectionError):
            return GatewayUnavailable(
                f"Lost the connection to {gateway} ({action}). The prompt may still reach the phone: "
                "check the payment status before sending another prompt",
                ambiguous=True,
            )
        return GatewayUnavailable(f"Could not connect to {gateway} ({action}); try again later")
    return GatewayUnavailable(
        f"{gateway} request failed ({action}): {exc.__class__.__name__}", ambiguous=charging
    )


# ------------------------------------------------------------------------------------------------
# Time budget
# ------------------------------------------------------------------------------------------------
class Deadline:
    """The time one request may still spend on gateway calls.

    ``timeout(connect, read)`` gives the ``(connect, read)`` timeouts for the next HTTP call,
    scaled down so that connect + read never exceeds the time left: a call that fails at its
    timeout still ends inside the budget. When less than MIN_CALL_SECONDS is left it raises
    GatewayUnavailable(ambiguous=False): the call is not started, so nothing was sent.
    ``budget=None`` means no limit (the configured timeouts as they are).
    """

    def __init__(
        self, budget: float | None, *, gateway: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self.gateway = gateway
        self._clock = clock
        self._end = None if budget is None else clock() + float(budget)

    def left(self) -> float | None:
        return None if self._end is None else self._end - self._clock()

    def has_time(self, seconds: float = MIN_CALL_SECONDS) -> bool:
        left = self.left()
        return left is None or left >= seconds

    def spent(self, action: str) -> GatewayUnavailable:
        return GatewayUnavailable(
            f"{self.gateway} took too long ({action}): the {self.budget:g} s allowed for one request "
            "were used up before anything was sent; try again in a minute",
            ambiguous=False,
        )

    def timeout(self, connect: float, read: float, action: str) -> tuple[float, float]:
        left = self.left()
        if left is None or connect + read <= 0:
            return (connect, read)
        if left < MIN_CALL_SECONDS:
            raise self.spent(action)
        scale = min(1.0, left / (connect + read))
        return (connect * scale, read * scale)


def call_with_retries(
    send: Callable[[tuple[float, float]], requests.Response],
    *,
    deadline: Deadline,
    connect: float,
    read: float,
    action: str,
    retries: int = 2,
    backoff_factor: float = 0.3,
    sleep: Callable[[float], Any] = time.sleep,
) -> requests.Response:
    """Send an idempotent request (token fetch, status look-up) with retries inside ``deadline``.

    ``send(timeout)`` makes one HTTP call. Connection errors (connect timeouts included) and
    502/503/504 are retried up to ``retries`` times (no pause before the first retry, then
    ``backoff_factor * 2**n`` s, like urllib3). A read timeout is not retried: the server already
    had the whole read timeout, and the caller (the chase) asks again later. Retries stop when the
    deadline has no time left for another call: the last error is raised or the last response
    returned, so the caller maps it to GatewayUnavailable. Never use it for a charge.
    """
    attempt = 0
    while True:
        timeout = deadline.timeout(connect, read, action)
        try:
            resp = send(timeout)
        except requests.ReadTimeout:
            raise
        except (requests.ConnectionError, requests.Timeout):
            if attempt >= retries or not _wait_before_retry(attempt, deadline, backoff_factor, sleep):
                raise
        else:
            if resp.status_code not in RETRY_STATUSES or attempt >= retries:
                return resp
            if not _wait_before_retry(attempt, deadline, backoff_factor, sleep):
                return resp
        attempt += 1


def _wait_before_retry(
    attempt: int, deadline: Deadline, backoff_factor: float, sleep: Callable[[float], Any]
) -> bool:
    """Sleep before retry number ``attempt + 1``; False when the deadline leaves no time for it."""
    pause = backoff_factor * 2**attempt if attempt >= 1 else 0.0
    if not deadline.has_time(pause + MIN_CALL_SECONDS):
        return False
    if pause > 0:
        sleep(pause)
    return True
