"""Staff logins: lockout page and audit (django-axes), and the second factor (django-otp).

Who must use a second factor is decided by ``OTP_REQUIRED_ROLES``: group names from
console/roles.py, plus the token ``superuser`` for superusers. For those users
``SecondFactorMiddleware`` sends every admin URL (custom views included) to the verify page
until a one-time code from their authenticator app, or a single-use recovery code, was
accepted in this session; a user without a device yet is sent to enrolment first. Others may
enrol from their security page, and from then on are asked for a code too.

TOTP keys are shown only while enrolling (before the first code confirms the device) and are
never logged; recovery codes are shown once, when made.
"""

from __future__ import annotations

import logging

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Exists
from django.dispatch import receiver
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django_otp import device_classes, devices_for_user, verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.kernel.audit import AuditAction, audit_record
from console.kernel.confirm import site_page
from console.models import AuditEvent

logger = logging.getLogger(__name__)

SUPERUSER_ROLE = "superuser"
ADMIN_PREFIX = "/admin/"


# ---------------------------------------------------------------------------------------------
# Lockout (django-axes)
# ---------------------------------------------------------------------------------------------
def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out login gets: 429, in the console's look, without the password."""
    cooloff = getattr(settings, "AXES_COOLOFF_TIME", None)
    minutes = int(cooloff.total_seconds() // 60) if cooloff else None
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "cooloff_minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    return render(request, "console/locked_out.html", context, status=429)


@receiver(user_locked_out)
def _audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    """One audit row per lockout: which username, from which address."""

    user = get_user_model().objects.filter(username=username).first() if username else None
    # A guessed name that matches no one is recorded too (object id empty), so an auditor sees
    # the attempt either way.
    target = user if user is not None else get_user_model()(username=(username or "")[:150])
    event = audit_record(
        actor=None,
        action=AuditAction.LOGIN_LOCKED_OUT,
        obj=target,
        after={"username": username or "", "ip_address": ip_address or ""},
        reason=f"{settings.AXES_FAILURE_LIMIT} failed logins",
    )
    if user is None:
        AuditEvent.objects.filter(pk=event.pk).update(object_id="")
    logger.warning("Login locked out for username %r from %s", username, ip_address)


# ---------------------------------------------------------------------------------------------
# Second factor (django-otp)
# ---------------------------------------------------------------------------------------------
def _required_roles() -> set[str]:
    return {r.strip() for r in getattr(settings, "OTP_REQUIRED_ROLES", []) if r.strip()}


def otp_required(user) -> bool:
    """True when the user's role is listed in OTP_REQUIRED_ROLES."""
    return second_factor_owed(user)[1]


def is_verified(user) -> bool:
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def has_device(user) -> bool:
    """True when the user has a confirmed second-factor device."""
    return second_factor_owed(user)[0]


def second_factor_owed(user) -> tuple[bool, bool]:
    """(has a confirmed device, must use a second factor): has_device and otp_required read in
    one query (the middleware asks on every admin request of an unverified user); the one place
    both rules are written."""
    if not getattr(user, "is_authenticated", False):
        return False, False
    roles = _required_roles()
    by_superuser = user.is_superuser and SUPERUSER_ROLE in roles
    facts = {
        f"device_{i}": Exists(model.objects.devices_for_user(user, confirmed=True))
        for i, model in enumerate(device_classes())
    }
    if roles and not by_superuser:
        facts["in_role"] = Exists(user.groups.filter(name__in=roles))
    row = get_user_model().objects.filter(pk=user.pk).values(**facts).first() or {}
    enrolled = any(v for k, v in row.items() if k.startswith("device_"))
    required = by_superuser or bool(row.get("in_role"))
    return enrolled, required


# URL names a user who still owes a second factor may open.
_OPEN_URL_NAMES = ("admin:login", "admin:logout", "admin:jsi18n", "console_otp_verify", "console_otp_enrol")


class SecondFactorMiddleware:
    """Every /admin/ URL needs a verified second factor for the roles in OTP_REQUIRED_ROLES."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self._refuse(request)
        return response if response is not None else self.get_response(request)

    def _refuse(self, request):
        if not request.path.startswith(ADMIN_PREFIX):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return None
        if request.path in {reverse(name) for name in _OPEN_URL_NAMES}:
            return None
        if is_verified(user):
            return None
        # Someone who chose to enrol is asked too: a device they cannot be asked for protects nothing.
        enrolled, required = second_factor_owed(user)
        if not enrolled and not required:
            return None
        target = "console_otp_verify" if enrolled else "console_otp_enrol"
        url = reverse(target)
        if request.method == "GET":
            url += "?" + _next_query(request.get_full_path())
        return redirect(url)


def _next_query(path: str) -> str:

    return urlencode({"next": path})


def safe_next(request, default: str = ADMIN_PREFIX) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def make_recovery_codes(user) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODE_COUNT new single-use ones."""

    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def verify_any(user, token: str):
    """The device that accepts `token`, else None: six digits are checked against the
    authenticator app, anything else against the recovery codes (so a mistyped code of one kind
    never slows down the other). Each device throttles itself after wrong codes.
    """

    token = "".join(token.split()).lower()
    if not token:
        return None
    kind = TOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
    for device in devices_for_user(user, confirmed=True):
        if isinstance(device, kind):
            found = verify_token(user, device.persistent_id, token)
            if found is not None:
                return found
    return None


def render_page(request, template, context, status=200):
    context = dict(context)
    return site_page(request, template, context.pop("title", ""), status=status, **context)


def to_login(request):
    return redirect(f"{reverse('admin:login')}?{_next_query(request.get_full_path())}")
