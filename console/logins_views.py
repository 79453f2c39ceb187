"""Second-factor pages: verify a code, enrol an authenticator app, see and renew recovery codes."""

from __future__ import annotations

import segno
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.kernel.audit import AuditAction, audit_record
from console.logins import (
    has_device,
    is_verified,
    make_recovery_codes,
    otp_required,
    render_page,
    safe_next,
    to_login,
    verify_any,
)

APP_DEVICE_NAME = "Authenticator app"


def _staff_or_login(request):
    user = request.user
    if not user.is_authenticated or not user.is_staff:
        return to_login(request)
    return None


def _mark_verified(request, device):
    # A new session key once the second factor is in, like a password login.
    request.session.cycle_key()
    otp_login(request, device)


@never_cache
@sensitive_post_parameters("otp_token")
@require_http_methods(["GET", "POST"])
def verify(request):
    """Enter a 6-digit code from the authenticator app, or one recovery code."""
    if (refused := _staff_or_login(request)) is not None:
        return refused
    user = request.user
    if is_verified(user):
        return redirect(safe_next(request))
    if not has_device(user):
        return redirect(reverse("console_otp_enrol"))
    error = ""
    status = 200
    if request.method == "POST":
        device = verify_any(user, request.POST.get("otp_token", ""))
        if device is not None:
            _mark_verified(request, device)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                messages.warning(
                    request, f"Recovery code used; {left} left. Make new ones on your security page."
                )
            return redirect(safe_next(request))
        error = "That code was not accepted. Check the time on your phone, or use a recovery code."
        status = 403
    return render_page(
        request,
        "console/otp_verify.html",
        {"title": "Verify it is you", "error": error, "next": safe_next(request, "")},
        status=status,
    )


@never_cache
@sensitive_post_parameters("otp_token")
@require_http_methods(["GET", "POST"])
def enrol(request):
    """Add an authenticator app. The key is shown only until the first code confirms it."""
    if (refused := _staff_or_login(request)) is not None:
        return refused
    user = request.user
    # Replacing a device needs the current one: a stolen password alone must not swap it.
    if has_device(user) and not is_verified(user):
        return redirect(f"{reverse('console_otp_verify')}?next={reverse('console_otp_enrol')}")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").last()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)
    error = ""
    status = 200
    if request.method == "POST":
        token = "".join(request.POST.get("otp_token", "").split())
        if token and device.verify_token(token):
            with transaction.atomic():
                TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                codes = make_recovery_codes(user)
                audit_record(
                    actor=user, action=AuditAction.OTP_ENROLLED, obj=user, after={"device": device.name}
                )
            _mark_verified(request, device)
            return render_page(
                request,
                "console/otp_recovery_codes.html",
                {"title": "Your recovery codes", "codes": codes, "next": safe_next(request)},
            )
        error = "That code was not accepted. Enter the 6 digits your app shows now."
        status = 403
    uri = device.config_url
    return render_page(
        request,
        "console/otp_enrol.html",
        {
            "title": "Set up your authenticator app",
            "otp_uri": uri,
            "otp_secret": _base32(device.bin_key),
            "qr_svg": segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff"),
            "required": otp_required(user),
            "error": error,
            "next": safe_next(request, ""),
        },
        status=status,
    )


def _base32(key: bytes) -> str:
    from base64 import b32encode

    text = b32encode(key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


@never_cache
@require_http_methods(["GET", "POST"])
def security(request):
    """The user's own page: second-factor status, set up, renew recovery codes."""
    if (refused := _staff_or_login(request)) is not None:
        return refused
    user = request.user
    if request.method == "POST":
        if not is_verified(user):
            return redirect(f"{reverse('console_otp_verify')}?next={reverse('console_security')}")
        codes = make_recovery_codes(user)
        audit_record(actor=user, action=AuditAction.OTP_RECOVERY_CODES_RENEWED, obj=user)
        return render_page(
            request,
            "console/otp_recovery_codes.html",
            {"title": "Your new recovery codes", "codes": codes, "next": reverse("console_security")},
        )
    static = StaticDevice.objects.filter(user=user, confirmed=True).first()
    return render_page(
        request,
        "console/security.html",
        {
            "title": "Two-step login",
            "has_app": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
            "verified": is_verified(user),
            "required": otp_required(user),
            "codes_left": static.token_set.count() if static else 0,
        },
    )
