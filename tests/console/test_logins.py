"""Staff logins: lockout per username + address, the second factor, idle sessions, landing page.

These tests log in through the real admin login form (never force_login, which conftest treats
as a finished login including the second factor).
"""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.logins import make_recovery_codes
from console.middleware import LAST_ACTIVITY_KEY
from console.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
VERIFY = "/admin/security/verify/"
ENROL = "/admin/security/enrol/"
STRANGER = "203.0.113.5"
OFFICE = "198.51.100.7"


def login(client, username, password, ip=STRANGER, **extra):
    data = {"username": username, "password": password, "next": "/admin/"}
    return client.post(LOGIN, data, REMOTE_ADDR=ip, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def current_token(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def lock_out(client, username, ip=STRANGER, **extra):
    responses = [login(client, username, "wrong-password", ip, **extra) for _ in range(5)]
    assert [r.status_code for r in responses[:4]] == [200] * 4  # the form again, with its error
    return responses[-1]


# ---------------------------------------------------------------------------------------------
# Lockout
# ---------------------------------------------------------------------------------------------
def test_the_fifth_wrong_password_locks_that_username_from_that_address(finance, settings):
    settings.OTP_REQUIRED_ROLES = []
    client = Client()
    locked = lock_out(client, "finance")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "30 minutes" in page and "Traceback" not in page

    right = login(client, "finance", "pw-finance")
    assert right.status_code == 429 and "Too many failed logins" in right.content.decode()
    assert not logged_in(client)


def test_a_lockout_leaves_an_audit_row(finance):
    lock_out(Client(), "finance")
    event = AuditEvent.objects.get(action="login.locked_out")
    assert event.object_type == "auth.user" and event.object_id == str(finance.pk)
    assert event.after == {"username": "finance", "ip_address": STRANGER}
    assert event.actor is None


def test_a_guessed_username_is_audited_too(db):
    lock_out(Client(), "nobody")
    event = AuditEvent.objects.get(action="login.locked_out")
    assert event.after["username"] == "nobody" and event.object_id == ""


def test_the_same_user_from_another_address_still_logs_in(finance, settings):
    settings.OTP_REQUIRED_ROLES = []
    lock_out(Client(), "finance", ip=STRANGER)
    office = Client()
    response = login(office, "finance", "pw-finance", ip=OFFICE)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert logged_in(office)


def test_behind_a_trusted_proxy_the_forwarded_address_counts(finance, settings):
    """Same rule as the public API (ledger.callbacks.client_ip): with TRUST_X_FORWARDED_FOR the
    proxy's address is shared by everyone, so the forwarded one is what gets locked."""
    settings.OTP_REQUIRED_ROLES = []
    settings.TRUST_X_FORWARDED_FOR = True
    proxy = "10.0.0.2"
    lock_out(Client(), "finance", ip=proxy, HTTP_X_FORWARDED_FOR=STRANGER)
    office = Client()
    response = login(office, "finance", "pw-finance", ip=proxy, HTTP_X_FORWARDED_FOR=OFFICE)
    assert response.status_code == 302 and logged_in(office)
    assert AccessAttempt.objects.get().ip_address == STRANGER


def test_without_a_trusted_proxy_a_forged_forwarded_address_is_ignored(finance, settings):
    settings.TRUST_X_FORWARDED_FOR = False
    lock_out(Client(), "finance", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert AccessAttempt.objects.get().ip_address == STRANGER
    response = login(Client(), "finance", "pw-finance", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert response.status_code == 429


def test_a_superuser_unlocks(finance, superuser, client_for, settings):
    settings.OTP_REQUIRED_ROLES = ["superuser"]
    lock_out(Client(), "finance")
    attempt = AccessAttempt.objects.get(username="finance")
    admin_client = client_for(superuser)
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "Unlock selected logins" in listing.content.decode()
    response = admin_client.post(
        "/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": [attempt.pk]}
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    event = AuditEvent.objects.get(action="login.unlocked")
    assert event.actor == superuser and event.after["username"] == "finance"

    again = Client()
    assert login(again, "finance", "pw-finance").status_code == 302 and logged_in(again)


@pytest.mark.parametrize("who", ["agent", "finance"])
def test_only_superusers_see_or_unlock_lockouts(who, request, client_for, settings):
    settings.OTP_REQUIRED_ROLES = []
    user = request.getfixturevalue(who)
    # Even a group given axes' own permissions does not open it: superusers only.
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="axes"))
    lock_out(Client(), "someone")
    attempt = AccessAttempt.objects.get()
    staff = client_for(user)
    assert staff.get("/admin/axes/accessattempt/").status_code == 403
    unlock = {"action": "unlock", "_selected_action": [attempt.pk]}
    response = staff.post("/admin/axes/accessattempt/", unlock)
    assert response.status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert "Failed logins" not in staff.get("/admin/").content.decode()


# ---------------------------------------------------------------------------------------------
# Second factor
# ---------------------------------------------------------------------------------------------
def test_finance_without_a_device_is_sent_to_enrolment_on_every_admin_url(finance):
    client = Client()
    assert login(client, "finance", "pw-finance").status_code == 302
    for url in ("/admin/", "/admin/find/?q=x", "/admin/ledger/order/", "/admin/security/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(ENROL + "?next="), url


def test_enrolment_shows_the_key_then_never_again(finance):
    client = Client()
    login(client, "finance", "pw-finance")
    page = client.get(ENROL).content.decode()
    device = TOTPDevice.objects.get(user=finance, confirmed=False)
    assert "otpauth://totp/" in page and "<svg" in page
    secret = page.split('id="otp-secret">')[1].split("<")[0].replace(" ", "")
    assert len(secret) >= 32

    done = client.post(ENROL, {"otp_token": current_token(device), "next": "/admin/"})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10 and all(code in done.content.decode() for code in codes)
    assert StaticDevice.objects.get(user=finance).token_set.count() == 10
    device.refresh_from_db()
    assert device.confirmed
    assert AuditEvent.objects.filter(action="otp.enrolled", object_id=str(finance.pk)).exists()

    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200
    own_page = client.get("/admin/security/").content.decode()
    assert secret not in own_page and "otpauth://" not in own_page and codes[0] not in own_page
    assert secret not in client.get("/admin/otp_totp/totpdevice/").content.decode()


def test_a_wrong_code_does_not_confirm_enrolment(finance):
    client = Client()
    login(client, "finance", "pw-finance")
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=finance)
    wrong = f"{(int(current_token(device)) + 1) % 1_000_000:06d}"
    assert client.post(ENROL, {"otp_token": wrong}).status_code == 403
    assert not device.confirmed
    assert client.get("/admin/").status_code == 302


@pytest.fixture
def finance_phone(finance):
    return TOTPDevice.objects.create(user=finance, name="Phone", confirmed=True)


def test_finance_with_a_device_is_sent_to_verify(finance_phone):
    client = Client()
    login(client, "finance", "pw-finance")
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == VERIFY + "?next=%2Fadmin%2F"
    # A stolen password cannot swap the device either.
    assert client.get(ENROL)["Location"].startswith(VERIFY)


def test_a_wrong_code_is_refused(finance_phone):
    client = Client()
    login(client, "finance", "pw-finance")
    wrong = f"{(int(current_token(finance_phone)) + 1) % 1_000_000:06d}"
    response = client.post(VERIFY, {"otp_token": wrong})
    assert response.status_code == 403 and "not accepted" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_the_right_code_lets_them_in(finance_phone):
    client = Client()
    login(client, "finance", "pw-finance")
    before = client.session.session_key
    code = current_token(finance_phone)
    response = client.post(VERIFY, {"otp_token": code, "next": "/admin/ledger/order/"})
    assert response.status_code == 302 and response["Location"] == "/admin/ledger/order/"
    assert client.session.session_key != before  # a new session key once verified
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/find/?q=x").status_code == 200


def test_next_may_not_leave_the_site(finance_phone):
    client = Client()
    login(client, "finance", "pw-finance")
    response = client.post(VERIFY, {"otp_token": current_token(finance_phone), "next": "https://evil.test/"})
    assert response["Location"] == "/admin/"


def test_a_recovery_code_works_once(finance, finance_phone):
    codes = make_recovery_codes(finance)
    first = Client()
    login(first, "finance", "pw-finance")
    assert first.post(VERIFY, {"otp_token": codes[0].upper()}).status_code == 302
    assert first.get("/admin/").status_code == 200
    assert StaticDevice.objects.get(user=finance).token_set.count() == 9

    second = Client()
    login(second, "finance", "pw-finance")
    assert second.post(VERIFY, {"otp_token": codes[0]}).status_code == 403
    assert second.get("/admin/").status_code == 302


def test_recovery_codes_can_be_renewed_once_verified(finance, finance_phone):
    old = make_recovery_codes(finance)
    client = Client()
    login(client, "finance", "pw-finance")
    client.post(VERIFY, {"otp_token": current_token(finance_phone)})
    response = client.post("/admin/security/")
    new = response.context["codes"]
    assert len(new) == 10 and not set(new) & set(old)
    tokens = set(StaticDevice.objects.get(user=finance).token_set.values_list("token", flat=True))
    assert tokens == set(new)


def test_a_superuser_is_asked_too(superuser):
    client = Client()
    login(client, "root", "pw-root")
    assert client.get("/admin/")["Location"].startswith(ENROL)


def test_an_agent_is_not_asked_but_may_enrol(agent):
    client = Client()
    login(client, "agent", "pw-agent")
    assert client.get("/admin/").status_code == 200
    own = client.get("/admin/security/")
    assert own.status_code == 200 and "Two-step login is <strong>off</strong>" in own.content.decode()
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=agent)
    assert client.post(ENROL, {"otp_token": current_token(device)}).status_code == 200
    device.refresh_from_db()
    assert device.confirmed

    # Having chosen it, the agent is asked for a code at the next login.
    later = Client()
    login(later, "agent", "pw-agent")
    assert later.get("/admin/")["Location"].startswith(VERIFY)


def test_empty_otp_required_roles_turns_it_off(finance, superuser, settings):
    settings.OTP_REQUIRED_ROLES = []
    for username in ("finance", "root"):
        client = Client()
        login(client, username, f"pw-{username}")
        assert client.get("/admin/").status_code == 200, username


def test_the_default_roles_are_finance_and_superusers():
    from console import settings as production

    assert production.OTP_REQUIRED_ROLES == ["Finance", "superuser"]


# ---------------------------------------------------------------------------------------------
# Sessions and the landing page
# ---------------------------------------------------------------------------------------------
def test_sessions_end_after_the_idle_time(agent, settings):
    settings.SESSION_COOKIE_AGE = 60
    client = Client()
    response = login(client, "agent", "pw-agent")
    assert response.cookies["sessionid"]["max-age"] == 60
    # The first page after login renews it: idle time, not time since login.
    assert client.get("/admin/").cookies["sessionid"]["max-age"] == 60
    Session.objects.update(expire_date=timezone.now() - timezone.timedelta(seconds=1))
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def _age_last_activity(client, seconds):
    session = client.session
    session[LAST_ACTIVITY_KEY] -= seconds
    session.save()


def test_a_request_renews_the_idle_time_only_once_the_last_renewal_is_the_slack_old(agent, settings):
    settings.SESSION_COOKIE_AGE, settings.STAFF_IDLE_RENEW_SECONDS = 600, 60
    client = Client()
    login(client, "agent", "pw-agent")
    assert client.get("/admin/").cookies["sessionid"]["max-age"] == 600
    expires = Session.objects.get().expire_date
    # A page within the slack writes nothing: same expiry, no new cookie. (Half the slack: the
    # requests themselves take time, and a slow machine must not carry it past the slack.)
    _age_last_activity(client, 30)
    Session.objects.update(expire_date=expires)  # the test's own save above moved it
    assert "sessionid" not in client.get("/admin/").cookies
    assert Session.objects.get().expire_date == expires
    # Once the last renewal is the slack old, the next page renews it.
    _age_last_activity(client, 30)
    Session.objects.update(expire_date=expires)
    assert client.get("/admin/").cookies["sessionid"]["max-age"] == 600
    assert Session.objects.get().expire_date > expires


def test_a_visitor_without_a_session_gets_none(db):
    assert "sessionid" not in Client().get(LOGIN).cookies


def test_the_default_idle_time_is_thirty_minutes_renewed_at_most_once_a_minute():
    from console import settings as production

    assert production.SESSION_COOKIE_AGE == 30 * 60 and production.STAFF_IDLE_RENEW_SECONDS == 60
    assert not getattr(production, "SESSION_SAVE_EVERY_REQUEST", False)


def test_the_login_page_opened_directly_lands_on_the_dashboard(agent):
    client = Client()
    client.get(LOGIN)
    response = client.post(LOGIN, {"username": "agent", "password": "pw-agent"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get(response["Location"]).status_code == 200
