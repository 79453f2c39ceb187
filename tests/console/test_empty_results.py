"""An empty list says so plainly, and how to get back to everything when a search emptied it."""

import re

import pytest

pytestmark = pytest.mark.django_db

UNFOLD_TEXT = "This page yielded into no results"


def _empty_box(html: str) -> str:
    return " ".join(re.search(r'data-testid="empty-title".*?</div>\s*</div>', html, re.S).group(0).split())


def test_a_search_that_finds_nothing_says_so_and_offers_to_clear_it(client_for, manager, bundles):
    html = client_for(manager).get("/admin/catalog/bundle/", {"q": "no-such-bundle"}).content.decode()
    box = _empty_box(html)
    assert "No results match" in box
    assert "No bundles match this search or these filters" in box
    assert re.search(r'<a href="\?" data-testid="clear-filters"[^>]*>.*Clear search and filters', box)
    assert UNFOLD_TEXT not in html


def test_an_empty_list_says_nothing_is_here_yet_without_a_clear_link(client_for, superuser):
    html = client_for(superuser).get("/admin/catalog/bundlepricechange/").content.decode()
    box = _empty_box(html)
    assert "Nothing here yet" in box
    assert "Nothing here yet: no bundle price changes have been recorded." in box
    assert "clear-filters" not in box
    assert UNFOLD_TEXT not in html
