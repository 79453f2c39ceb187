"""The demo day goes through the real services and leaves balanced books."""

import pytest
from django.core.management import call_command

from ledger.books import books_check
from ledger.models import Order, OrderStatus
from reconciliation.models import Claim, ClaimStatus


@pytest.mark.django_db
def test_setup_demo_loads_every_claim_outcome_once(settings, bundles, capsys):
    settings.DEBUG = True
    call_command("setup_demo")
    out = capsys.readouterr().out
    assert "Demo logins" in out and "Loaded demo data" in out
    reasons = set(Claim.objects.filter(status=ClaimStatus.NEEDS_REVIEW).values_list("reason", flat=True))
    assert reasons >= {"amount_mismatch", "possible_typo", "code_already_used", "unknown_code"}
    assert Claim.objects.filter(status=ClaimStatus.VERIFIED).exists()
    assert Claim.objects.filter(status=ClaimStatus.PENDING).exists()
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 2
    assert Order.objects.filter(status=OrderStatus.FAILED).count() == 2
    assert books_check() == []

    orders = Order.objects.count()
    call_command("setup_demo")  # a second run adds nothing and prints no passwords
    assert Order.objects.count() == orders
    assert "Demo logins already exist" in capsys.readouterr().out


@pytest.mark.django_db
def test_setup_demo_refuses_without_debug(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("setup_demo")
