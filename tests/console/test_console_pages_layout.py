"""Find anything and the customer timeline are drawn inside the admin layout: the site's name,
the sidebar and breadcrumbs back to the dashboard, like every other console page."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _breadcrumbs(html: str) -> list[str]:
    trail = re.search(r'data-testid="breadcrumbs">(.*?)</span>\s*</h1>', html, re.S).group(1)
    trail = re.sub(r'<span class="material-symbols-outlined[^>]*>chevron_right</span>', "›", trail)
    return [part.strip() for part in re.sub(r"<[^>]+>", "", trail).split("›")]


def _in_admin_layout(html: str):
    assert re.search(r'<div id="site-name">\s*<a href="/admin/">\s*Tillbook', html)  # the site header
    assert 'href="/admin/find/"' in html and 'href="/admin/catalog/bundle/"' in html  # the sidebar


def test_find_anything_has_the_header_sidebar_and_breadcrumbs(client_for, agent):
    html = client_for(agent).get(reverse("console_find"), {"q": "0712 345 678"}).content.decode()
    _in_admin_layout(html)
    assert _breadcrumbs(html) == ["Dashboard", "Find anything"]
    assert 'href="/admin/" class="align-middle' in html  # Dashboard is a link back
    assert "open the timeline of 0712 345 678" in html  # phones as staff read them


def test_the_customer_timeline_has_the_header_and_a_way_back_to_find(client_for, agent):
    html = client_for(agent).get(reverse("console_customer", args=["254712345678"])).content.decode()
    _in_admin_layout(html)
    assert _breadcrumbs(html) == ["Dashboard", "Find anything", "Customer 0712 345 678"]
    assert 'href="/admin/find/" class="align-middle' in html
    assert "Nothing recorded for 0712 345 678 yet." in html


def test_model_pages_keep_their_full_breadcrumbs(client_for, manager, bundles):
    url = f"/admin/catalog/bundle/{bundles['daily-2gb'].pk}/change/"
    html = client_for(manager).get(url).content.decode()
    assert _breadcrumbs(html) == ["Catalogue", "Bundles", "Daily 2GB"]
    assert "truncate" not in re.search(r'data-testid="breadcrumbs">(.*?)</h1>', html, re.S).group(1)
