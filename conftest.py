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
        from ledger.chart import chart_ensure

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
