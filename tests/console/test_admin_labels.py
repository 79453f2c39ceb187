"""Every admin page speaks to people: no column, filter, field or section label is a raw name.

The test walks every registered ModelAdmin (changelist with its filters, add form, change form of
a real row from the demo day) as a superuser and reads the labels a person sees: table headers,
filter titles, field labels and section headings. A label with an underscore, or one of the
words a field name leaks ("msisdn", "sha256", "Is ..."), is a raw label.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

pytestmark = pytest.mark.django_db

LABEL_TAGS = {"th", "label", "h2", "h3"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
RAW = re.compile(r"_|msisdn|sha256|^(by )?is |\bdata mb\b|^(by )?key$|^pk$", re.IGNORECASE)
SKIPPED = {"script", "style", "select", "textarea"}


class _Labels(HTMLParser):
    """Text of the label-ish elements (th, label, h2, h3) of the page's main content."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.current: list[str] = []
        self.labels: list[str] = []
        self.skip = 0
        self.stack: list[bool] = []
        self.thead = 0

    def handle_starttag(self, tag, attrs):
        # Icons are ligature words (arrow_circle_down) and sort numbers; neither is a label.
        if tag in VOID:
            return
        classes = dict(attrs).get("class") or ""
        if tag in SKIPPED or "material-symbols" in classes or "sortpriority" in classes:
            self.stack.append(True)
            self.skip += 1
            return
        self.stack.append(False)
        if tag == "thead":
            self.thead += 1
        if tag in LABEL_TAGS and (tag != "th" or self.thead):
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.stack and self.stack.pop():
            self.skip -= 1
            return
        if tag == "thead":
            self.thead -= 1
        if tag in LABEL_TAGS and self.depth and (tag != "th" or self.thead):
            self.depth -= 1
            if not self.depth:
                text = " ".join("".join(self.current).split())
                if text:
                    self.labels.append(text)
                self.current = []

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_data(self, data):
        if self.depth and not self.skip:
            self.current.append(data)


def labels_of(html: str) -> list[str]:
    parser = _Labels()
    parser.feed(html)
    return parser.labels


def raw_labels(html: str) -> list[str]:
    return [text for text in labels_of(html) if RAW.search(text)]


@pytest.fixture
def demo_day(settings, bundles, superuser):
    settings.DEBUG = True
    call_command("setup_demo", verbosity=0)
    call_command("setup_schedules", verbosity=0)


def _url(name, *args):
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _pages(model):
    """The changelist, add, import and export pages, and the change form of the first row."""
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    pages = [_url(f"{prefix}_{page}") for page in ("changelist", "add", "import", "export")]
    obj = model._default_manager.order_by("pk").first()
    if obj is not None:
        pages.append(_url(f"{prefix}_change", obj.pk))
    return [url for url in pages if url]


def test_no_admin_page_shows_a_raw_label(client_for, superuser, demo_day):
    client = client_for(superuser)
    found: dict[str, list[str]] = {}
    walked = []
    for model in admin.site._registry:
        for url in _pages(model):
            response = client.get(url)
            if response.status_code != 200:
                continue  # a page the admin forbids even a superuser (e.g. add on a log)
            walked.append(url)
            raw = raw_labels(response.content.decode())
            if raw:
                found[url] = sorted(set(raw))
    changelists = [u for u in walked if u.count("/") == 4]
    assert "/admin/catalog/bundle/export/" in walked
    assert len(changelists) == len(admin.site._registry)
    assert len(walked) >= 40, walked  # the walk read add and change forms too
    assert found == {}, "\n".join(f"{url}: {labels}" for url, labels in found.items())


def test_no_column_or_filter_is_labelled_with_a_raw_name(rf, superuser):
    """Every list column and filter title, read from the admin classes: empty lists included."""
    from django.contrib.admin.utils import label_for_field

    request = rf.get("/admin/")
    request.user = superuser
    raw = []
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.get_list_display(request):
            label = str(label_for_field(name, model, model_admin))
            if RAW.search(label):
                raw.append(f"{model.__name__} column {name}: {label}")
        for spec in model_admin.get_list_filter(request):
            field = spec[0] if isinstance(spec, (list, tuple)) else spec
            if isinstance(field, str):
                label = str(label_for_field(field.split("__")[-1], _model_of(model, field), model_admin))
            else:
                label = str(getattr(field, "title", ""))
            if RAW.search(label):
                raw.append(f"{model.__name__} filter {field}: {label}")
    assert raw == []


def _model_of(model, path: str):
    """The model that holds the last field of a filter path like "bundle__category"."""
    for part in path.split("__")[:-1]:
        model = model._meta.get_field(part).related_model
    return model


def test_the_label_reader_sees_headers_labels_and_filters():
    html = (
        "<table><thead><tr><th><a>Sender msisdn</a></th></tr></thead></table>"
        "<h3> By is system </h3><label for=x>Data_mb</label><select><option>a_b</option></select>"
    )
    assert raw_labels(html) == ["Sender msisdn", "By is system", "Data_mb"]
