"""The console and the storefront carry the Tillbook icon, and the icon file is served."""

import re

import pytest

pytestmark = pytest.mark.django_db

ICON = "/static/console/favicon.svg"


def _icon_links(html):
    return re.findall(r'<link[^>]*rel="icon"[^>]*>', html)


def test_admin_login_page_links_the_icon(client):
    html = client.get("/admin/login/").content.decode()
    links = _icon_links(html)
    assert links and ICON in links[0] and 'type="image/svg+xml"' in links[0]


def test_storefront_links_the_icon(client):
    html = client.get("/").content.decode()
    assert any(ICON in link for link in _icon_links(html))


def test_the_icon_file_is_served(live_server):
    import urllib.request

    with urllib.request.urlopen(f"{live_server.url}{ICON}") as response:
        assert response.status == 200
        body = response.read().decode()
    assert body.lstrip().startswith("<svg") and "</svg>" in body


def test_favicon_ico_requests_are_sent_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == ICON
