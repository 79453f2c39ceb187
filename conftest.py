"""Shared fixtures: a user per role, logged-in clients, and test-safe settings."""

import pytest


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _chart_of_accounts(request):
    """Transactional tests flush the database between tests, migration data included: the books
    need their chart back before the test runs."""
    if {"transactional_db", "live_server"} & set(request.fixturenames) or _marked_transactional(request):
        request.getfixturevalue("transactional_db")
        from ledger.books.chart import chart_ensure

        chart_ensure()


def _marked_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and cached tokens must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _forced_logins_pass_second_factor(monkeypatch):
    """`client.force_login(user)` stands for a finished login: for a role that needs a second
    factor (OTP_REQUIRED_ROLES, on in tests as in production) that includes the code, so the
    user gets a confirmed authenticator device and the session is marked verified. Tests of the
    second factor itself log in through the real forms (tests/console/test_logins.py)."""
    from django.test import Client

    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        from console.logins import otp_required

        if otp_required(user):
            verify_second_factor(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


def verify_second_factor(client, user):
    """Mark the client's session as having passed the second factor with the user's device."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test phone", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def _user_in(django_user_model, username, role):
    from django.contrib.auth.models import Group

    from console.roles import roles_setup

    roles_setup()
    user = django_user_model.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def agent(db, django_user_model):
    from console.roles import SUPPORT_AGENT

    return _user_in(django_user_model, "agent", SUPPORT_AGENT)


@pytest.fixture
def finance(db, django_user_model):
    from console.roles import FINANCE

    return _user_in(django_user_model, "finance", FINANCE)


@pytest.fixture
def manager(db, django_user_model):
    from console.roles import CATALOGUE_MANAGER

    return _user_in(django_user_model, "manager", CATALOGUE_MANAGER)


@pytest.fixture
def superuser(db, django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="pw-root", email="r@x.test")


@pytest.fixture
def client_for(client):
    """client_for(user) -> a test client logged in as that user."""

    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def bundles(db):
    """The storefront catalogue from fixtures/bundles.json."""
    from django.core.management import call_command

    from catalog.models import Bundle

    call_command("loaddata", "fixtures/bundles.json", verbosity=0)
    return {b.slug: b for b in Bundle.objects.all()}
