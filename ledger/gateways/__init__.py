"""Payment gateway clients: ``get_gateway()`` returns the configured one.

No ORM access and no Django model imports in this package. Gateway configuration (credentials,
timeouts, GATEWAY_REQUEST_BUDGET, SIMULATOR_CALLBACK_DELAY) is read from Django settings only
here; the callback parsers read the plausible ranges through :mod:`console.kernel.plausible`.
"""

from __future__ import annotations

import threading
from typing import Any

from .base import (
    DEFAULT_REQUEST_BUDGET,
    CallbackParseError,
    Gateway,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    StatusQuery,
    StkAccepted,
    StkPushRequest,
    StkResult,
    describe_result,
    status_for_result_code,
)
from .daraja import SANDBOX_BASE_URL as DARAJA_SANDBOX_URL
from .daraja import DarajaConfig, DarajaGateway
from .http import (
    session_with_retries,
)
from .payhero import DEFAULT_BASE_URL as PAYHERO_DEFAULT_URL
from .payhero import PayHeroConfig, PayHeroGateway
from .simulator import DEFAULT_CALLBACK_DELAY, SIMULATED_FAILURES, SimulatorGateway

__all__ = [
    "GATEWAY_NAMES",
    "SIMULATED_FAILURES",
    "CallbackParseError",
    "DarajaConfig",
    "DarajaGateway",
    "Gateway",
    "GatewayError",
    "GatewayRejected",
    "GatewayUnavailable",
    "PayHeroConfig",
    "PayHeroGateway",
    "SimulatorGateway",
    "StatusQuery",
    "StkAccepted",
    "StkPushRequest",
    "StkResult",
    "describe_result",
    "gateway_class",
    "get_gateway",
    "session_with_retries",
    "status_for_result_code",
]

GATEWAY_NAMES = ("simulator", "payhero", "daraja")
GATEWAY_CLASSES: dict[str, type[Gateway]] = {
    "simulator": SimulatorGateway,
    "payhero": PayHeroGateway,
    "daraja": DarajaGateway,
}


def gateway_class(name: str) -> type[Gateway] | None:
    """The gateway class called ``name`` (a callback source is named after its gateway), without
    building a client: parsing a callback needs no credentials. None when there is none."""
    return GATEWAY_CLASSES.get(name)


# One instance per configuration, so the Daraja token cache and HTTP connection pools survive
# between calls; a settings change (or override_settings in tests) builds a new instance.
_instances: dict[tuple, Gateway] = {}
_instances_lock = threading.Lock()


def _setting(settings: Any, name: str, default: Any = "") -> Any:
    value = getattr(settings, name, default)
    return value.strip() if isinstance(value, str) else value


def _require(settings: Any, label: str, names: tuple[str, ...]) -> None:
    missing = [n for n in names if _setting(settings, n) in ("", None)]
    if missing:
        raise GatewayError(f"{label} is not configured: set {', '.join(missing)} in the environment")


def _timeouts(settings: Any) -> tuple[float, float]:
    try:
        return (
            float(_setting(settings, "GATEWAY_CONNECT_TIMEOUT", 5.0)),
            float(_setting(settings, "GATEWAY_READ_TIMEOUT", 20.0)),
        )
    except (TypeError, ValueError):
        raise GatewayError("GATEWAY_CONNECT_TIMEOUT and GATEWAY_READ_TIMEOUT must be numbers of seconds")


def _request_budget(settings: Any) -> float:
    """Seconds one customer request may spend on gateway calls (25 s, below gunicorn's 30 s)."""
    try:
        budget = float(_setting(settings, "GATEWAY_REQUEST_BUDGET", DEFAULT_REQUEST_BUDGET))
    except (TypeError, ValueError):
        budget = float("nan")
    if not budget > 0:
        raise GatewayError("GATEWAY_REQUEST_BUDGET must be a number of seconds above 0")
    return budget


def _simulator_delay(settings: Any) -> float:
    try:
        delay = float(_setting(settings, "SIMULATOR_CALLBACK_DELAY", DEFAULT_CALLBACK_DELAY))
    except (TypeError, ValueError):
        raise GatewayError("SIMULATOR_CALLBACK_DELAY must be a number of seconds")
    return max(0.0, delay) if delay == delay else DEFAULT_CALLBACK_DELAY


def _payhero_config(settings: Any) -> PayHeroConfig:
    _require(settings, "PayHero", ("PAYHERO_API_USERNAME", "PAYHERO_API_PASSWORD", "PAYHERO_CHANNEL_ID"))
    try:
        channel_id = int(_setting(settings, "PAYHERO_CHANNEL_ID"))
    except (TypeError, ValueError):
        raise GatewayError("PAYHERO_CHANNEL_ID must be a number (Payment Channels > My Payment Channels)")
    connect, read = _timeouts(settings)
    return PayHeroConfig(
        base_url=_setting(settings, "PAYHERO_BASE_URL") or PAYHERO_DEFAULT_URL,
        username=_setting(settings, "PAYHERO_API_USERNAME"),
        password=_setting(settings, "PAYHERO_API_PASSWORD"),
        channel_id=channel_id,
        connect_timeout=connect,
        read_timeout=read,
        request_budget=_request_budget(settings),
    )


def _daraja_config(settings: Any) -> DarajaConfig:
    _require(
        settings,
        "Daraja",
        ("DARAJA_CONSUMER_KEY", "DARAJA_CONSUMER_SECRET", "DARAJA_SHORTCODE", "DARAJA_PASSKEY"),
    )
    transaction_type = _setting(settings, "DARAJA_TRANSACTION_TYPE") or "CustomerBuyGoodsOnline"
    party_b = str(_setting(settings, "DARAJA_PARTY_B") or "")
    if transaction_type == "CustomerBuyGoodsOnline" and not party_b:
        raise GatewayError("Daraja is not configured: set DARAJA_PARTY_B to the till number for Buy Goods")
    connect, read = _timeouts(settings)
    return DarajaConfig(
        base_url=_setting(settings, "DARAJA_BASE_URL") or DARAJA_SANDBOX_URL,
        consumer_key=_setting(settings, "DARAJA_CONSUMER_KEY"),
        consumer_secret=_setting(settings, "DARAJA_CONSUMER_SECRET"),
        shortcode=str(_setting(settings, "DARAJA_SHORTCODE")),
        passkey=_setting(settings, "DARAJA_PASSKEY"),
        transaction_type=transaction_type,
        party_b=party_b,
        connect_timeout=connect,
        read_timeout=read,
        request_budget=_request_budget(settings),
    )


def _shared_cache() -> Any:
    """Django's default cache, shared by web and worker processes (None if unusable)."""
    try:
        from django.core.cache import cache

        return cache
    except Exception:  # noqa: BLE001 - the token cache is an optimisation only
        return None


def get_gateway(name: str | None = None) -> Gateway:
    """The gateway called ``name``, or settings.PAYMENT_GATEWAY. Raises GatewayError when unknown
    or when its credentials are missing."""
    from django.conf import settings

    chosen = (name or _setting(settings, "PAYMENT_GATEWAY") or "simulator").strip().lower()
    if chosen == "simulator":
        delay = _simulator_delay(settings)
        key: tuple = ("simulator", delay)

        def factory() -> Gateway:
            return SimulatorGateway(callback_delay=delay)
    elif chosen == "payhero":
        payhero_config = _payhero_config(settings)
        key = ("payhero", payhero_config)

        def factory() -> Gateway:
            return PayHeroGateway(payhero_config)
    elif chosen == "daraja":
        daraja_config = _daraja_config(settings)
        key = ("daraja", daraja_config)

        def factory() -> Gateway:
            return DarajaGateway(daraja_config, token_cache=_shared_cache())
    else:
        raise GatewayError(
            f"Unknown payment gateway {chosen!r}: PAYMENT_GATEWAY must be one of {', '.join(GATEWAY_NAMES)}"
        )

    with _instances_lock:
        gateway = _instances.get(key)
        if gateway is None:
            gateway = _instances[key] = factory()
        return gateway
