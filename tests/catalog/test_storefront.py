import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from catalog import views
from tests.catalog.factories import BundleFactory

pytestmark = pytest.mark.django_db


def _section_order(html):
    return re.findall(r'data-category="(\w+)"', html)


def test_storefront_lists_only_active_bundles_grouped_in_category_order(client, bundles):
    BundleFactory(name="Retired 1GB", slug="retired-1gb", category="hourly", active=False)
    html = client.get("/").content.decode()
    assert "Retired 1GB" not in html
    assert "Daily 2GB" in html and "Weekly 15GB" in html
    order = _section_order(html)
    expected = [c for c in ["hourly", "daily", "weekly", "monthly"] if c in order]
    assert order == expected and "daily" in order and "monthly" in order


def test_storefront_shows_amounts_as_ksh_with_thousands(client):
    BundleFactory(name="Monthly 100GB", slug="monthly-100gb", category="monthly", price=1500)
    html = client.get("/").content.decode()
    assert "Ksh 1,500" in html


def test_storefront_highlights_featured(client):
    BundleFactory(name="Plain", slug="plain")
    BundleFactory(name="Star", slug="star", featured=True)
    html = client.get("/").content.decode()
    assert re.search(r'class="bundle featured" data-slug="star"', html)
    assert re.search(r'class="bundle" data-slug="plain"', html)


def test_storefront_says_so_when_nothing_is_on_sale(client):
    assert "No bundles on sale" in client.get("/").content.decode()


def test_pay_page_for_a_retired_bundle_is_gone_and_points_at_the_catalogue(client):
    BundleFactory(name="Old 1GB", slug="old", active=False)
    response = client.get("/pay/old/")
    assert response.status_code == 410
    html = response.content.decode()
    assert "This bundle is no longer sold" in html and "Old 1GB" in html
    assert 'href="/"' in html and "See the bundles on sale" in html
    assert 'id="stk-form"' not in html  # nothing to pay for
    assert "storefront.css" in html  # the storefront's page, not a bare error


def test_pay_page_for_an_unknown_bundle_is_a_styled_404(client):
    response = client.get("/pay/nope/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "We could not find that bundle" in html and "storefront.css" in html
    assert "See the bundles on sale" in html


def test_pay_page_shows_till_steps_with_exact_amount(client, settings):
    settings.TILL_NUMBER = "6944804"
    BundleFactory(name="Weekly 15GB", slug="weekly-15gb", price=750)
    html = client.get("/pay/weekly-15gb/").content.decode()
    assert 'data-testid="till-number">6944804<' in html
    assert "Buy Goods and Services" in html and "Lipa na M-PESA" in html
    assert "Enter amount <strong>Ksh 750</strong>" in html


def test_whatsapp_link_carries_bundle_amount_and_claim_lines(client, settings):
    settings.SUPPORT_WHATSAPP = "254782070228"
    settings.TILL_NUMBER = "6944804"
    BundleFactory(name="Monthly 25GB", slug="monthly-25gb", price=1500)
    response = client.get("/pay/monthly-25gb/")
    href = re.search(r'id="whatsapp-link" href="([^"]+)"', response.content.decode()).group(1)
    url = urlparse(href.replace("&amp;", "&"))
    assert (url.scheme, url.netloc, url.path) == ("https", "wa.me", "/254782070228")
    text = parse_qs(url.query)["text"][0]
    lines = text.split("\n")
    assert "Bundle: Monthly 25GB" in lines
    assert "Amount: Ksh 1,500" in lines
    assert any(line.startswith("Recipient Number:") for line in lines)
    assert lines[-1].startswith("M-Pesa Code:")
    assert "6944804" in text


def test_stk_form_enabled_when_the_stk_api_exists(client):
    BundleFactory(slug="daily-1gb")
    html = client.get("/pay/daily-1gb/").content.decode()
    assert f'data-stk-url="{reverse("ledger:stk_push")}"' in html
    assert "coming soon" not in html
    assert 'data-bundle="daily-1gb"' in html


def test_stk_form_disabled_with_a_note_when_the_stk_api_is_missing(client, monkeypatch):
    monkeypatch.setattr(views, "stk_push_url", lambda: None)
    BundleFactory(slug="daily-1gb")
    html = client.get("/pay/daily-1gb/").content.decode()
    assert views.STK_COMING_SOON in html
    assert re.search(r"<fieldset\s+disabled>", html)


def test_pay_page_sets_csrf_cookie_for_the_stk_post(client):
    BundleFactory(slug="daily-1gb")
    response = client.get("/pay/daily-1gb/")
    assert "csrftoken" in response.cookies


def test_storefront_refuses_post(client):
    assert client.post("/").status_code == 405
