"""Secrets are never shown, stored in the clear or logged; strangers cannot fill the database.

Covers the callback edge (excerpts, rate limit, size limit, token rotation), what the admin shows
of stored rows, the log, the data migration that redacts old rows, and the settings check.
"""

import datetime as dt
import importlib
import io
import json
import logging
import sys
import types

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.utils import timezone

from console.checks import callback_tokens_check
from console.kernel.redact import redact_json, redact_text, redact_text_strict
from console.logging import RedactSecretsFilter
from ledger.callbacks import stk_token_is_valid
from ledger.models import CallbackLog, CallbackOutcome, CallbackSource, StkRequest
from tests.ledger.factories import StkRequestFactory, ledger_settings  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_settings")]

STK_TOKEN = "stk-Secret-0123456789abcdefXYZ"
C2B_TOKEN = "c2b-Secret-0123456789abcdefXYZ"
OLD_TOKEN = "old-Secret-9876543210zyxwvuABC"  # a token from before, no longer configured anywhere
GOOD_STK = "Zq3m8Rk1Vb7Tn2Lp5Xw9Hc4Jd6Fs0GaE"
GOOD_C2B = "Yt5n1Qe8Wr3Uo7Ip2As6Df9Gh4Jk0LzX"


@pytest.fixture
def tokens(settings):
    settings.STK_CALLBACK_TOKEN = STK_TOKEN
    settings.C2B_CALLBACK_TOKEN = C2B_TOKEN
    return settings


def failure_body(checkout="ws_CO_SECRETS_1") -> dict:
    """A Daraja cancellation: parses without a status query or a transaction time."""
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "29115-1-1",
                "CheckoutRequestID": checkout,
                "ResultCode": 1032,
                "ResultDesc": "Request cancelled by user",
            }
        }
    }


def post(client, path, data, **extra):
    body = data if isinstance(data, bytes | str) else json.dumps(data)
    return client.post(path, data=body, content_type="application/json", **extra)


def freeze_rate_limit_clock(monkeypatch):
    # A fixed clock for the rate limiter only: a window ending mid-test would reset its count.
    frozen = types.SimpleNamespace(time=lambda: 1_900_000_000.0)
    monkeypatch.setattr("django_ratelimit.core.time", frozen)


# ---- the callback edge ------------------------------------------------------------------------
def test_wrong_token_keeps_only_an_excerpt_and_the_size(client, tokens):
    tokens.CALLBACK_EXCERPT_BYTES = 100
    body = json.dumps({**failure_body(), "padding": "x" * 5000}).encode()
    resp = post(client, "/api/callbacks/daraja/guessed-token/", body)
    assert resp.status_code == 404
    log = CallbackLog.objects.get()
    assert log.authenticated is False and log.outcome == CallbackOutcome.REJECTED
    assert log.body_size == len(body) and log.body_truncated is True
    assert log.body.encode() == body[:100]


def test_a_near_miss_of_the_token_is_not_stored_either(client, tokens):
    # A truncated or mistyped copy of our token would give most of it away.
    assert post(client, f"/api/callbacks/daraja/{STK_TOKEN[:-3]}/", failure_body()).status_code == 404
    log = CallbackLog.objects.get()
    assert log.path == "/api/callbacks/daraja/***/" and STK_TOKEN[:-3] not in json.dumps(log.headers)


def test_thirty_wrong_token_requests_from_one_ip_store_twenty_then_429(client, tokens, monkeypatch):
    tokens.CALLBACK_REJECTED_RATE = "20/m"
    freeze_rate_limit_clock(monkeypatch)
    statuses = [
        post(client, "/api/callbacks/daraja/guess/", failure_body(), REMOTE_ADDR="203.0.113.9").status_code
        for _ in range(30)
    ]
    assert statuses == [404] * 20 + [429] * 10
    assert CallbackLog.objects.count() == 20
    # Another address is not punished for the first one's flood.
    assert (
        post(client, "/api/callbacks/daraja/guess/", failure_body(), REMOTE_ADDR="203.0.113.10").status_code
        == 404
    )
    assert CallbackLog.objects.count() == 21


def test_a_20_mb_body_to_the_right_url_is_a_413_kept_as_an_excerpt(client, tokens):
    body = b'{"Body": "' + b"x" * (20 * 1024 * 1024 - 12) + b'"}'
    assert len(body) == 20_971_520
    resp = post(client, f"/api/callbacks/daraja/{STK_TOKEN}/", body)
    assert resp.status_code == 413
    log = CallbackLog.objects.get()
    assert log.outcome == CallbackOutcome.REJECTED and log.authenticated is True
    assert log.body_size == 20_971_520 and log.body_truncated is True
    assert len(log.body.encode()) == django_settings.CALLBACK_EXCERPT_BYTES
    assert STK_TOKEN not in log.path


# ---- STK token rotation ---------------------------------------------------------------------------
def rotate(settings, *, until):
    settings.STK_CALLBACK_TOKEN = GOOD_STK
    settings.STK_CALLBACK_TOKEN_PREVIOUS = STK_TOKEN
    settings.STK_CALLBACK_TOKEN_PREVIOUS_UNTIL = until.isoformat()


def test_previous_stk_token_is_valid_until_its_deadline(tokens):
    rotate(tokens, until=timezone.now() + dt.timedelta(hours=1))
    assert stk_token_is_valid(GOOD_STK) and stk_token_is_valid(STK_TOKEN)
    assert not stk_token_is_valid(C2B_TOKEN) and not stk_token_is_valid("")
    rotate(tokens, until=timezone.now() - dt.timedelta(seconds=1))
    assert stk_token_is_valid(GOOD_STK) and not stk_token_is_valid(STK_TOKEN)


def test_previous_stk_token_without_a_readable_deadline_is_refused(tokens):
    rotate(tokens, until=timezone.now() + dt.timedelta(hours=1))
    for unreadable in ("next tuesday", "2026-13-45T10:00:00+03:00"):
        tokens.STK_CALLBACK_TOKEN_PREVIOUS_UNTIL = unreadable
        assert not stk_token_is_valid(STK_TOKEN)


def test_callback_with_the_previous_token_is_accepted_before_the_deadline(client, tokens):
    rotate(tokens, until=timezone.now() + dt.timedelta(hours=1))
    resp = post(client, f"/api/callbacks/daraja/{STK_TOKEN}/", failure_body())
    assert resp.status_code == 200
    assert CallbackLog.objects.get().authenticated is True


def test_callback_with_the_previous_token_is_refused_after_the_deadline(client, tokens):
    rotate(tokens, until=timezone.now() - dt.timedelta(minutes=1))
    resp = post(client, f"/api/callbacks/daraja/{STK_TOKEN}/", failure_body())
    assert resp.status_code == 404
    log = CallbackLog.objects.get()
    assert log.authenticated is False and STK_TOKEN not in log.path


# ---- what the admin shows --------------------------------------------------------------------------
def stk_with_secrets():
    return StkRequestFactory(
        raw_request={
            "CallBackURL": f"https://shop.example/api/callbacks/daraja/{STK_TOKEN}/",
            "Note": f"token={STK_TOKEN}",
            "Old": f"https://shop.example/api/callbacks/payhero/{OLD_TOKEN}/",
        },
        raw_response={"echo": f"/api/callbacks/daraja/{STK_TOKEN}/", STK_TOKEN: "as a key"},
        last_query_result={"url": f"https://shop.example/api/callbacks/daraja/{STK_TOKEN}/"},
    )


def test_order_page_never_shows_a_token_in_the_raw_request(client_for, agent, tokens):
    stk = stk_with_secrets()
    html = client_for(agent).get(f"/admin/ledger/order/{stk.order.pk}/change/").content.decode()
    assert stk.checkout_request_id in html and "CallBackURL" in html
    assert STK_TOKEN not in html and OLD_TOKEN not in html
    assert "/api/callbacks/daraja/***/" in html


def test_stk_request_page_never_shows_a_token(client_for, agent, tokens):
    stk = stk_with_secrets()
    html = client_for(agent).get(f"/admin/ledger/stkrequest/{stk.pk}/change/").content.decode()
    assert "CallBackURL" in html
    assert STK_TOKEN not in html and OLD_TOKEN not in html


def old_callback_log(**overrides):
    """A row as stored before redaction existed: the token in the path, a header, body and detail."""
    values = {
        "source": CallbackSource.DARAJA,
        "path": f"/api/callbacks/daraja/{STK_TOKEN}/",
        "headers": {"Content-Type": "application/json", "Referer": f"https://x.test/?t={C2B_TOKEN}"},
        "body": json.dumps({**failure_body("ws_CO_OLD_ROW"), "echo": STK_TOKEN}),
        "body_size": 200,
        "outcome": CallbackOutcome.UNKNOWN_ORDER,
        "detail": f"Looked for /api/callbacks/daraja/{OLD_TOKEN}/",
        "checkout_request_id": "ws_CO_OLD_ROW",
    }
    return CallbackLog.objects.create(**{**values, **overrides})


def test_callback_inbox_list_and_detail_never_show_a_token(client_for, superuser, tokens):
    log = old_callback_log()
    c = client_for(superuser)
    listing = c.get("/admin/ledger/callbacklog/").content.decode()
    assert "ws_CO_OLD_ROW" in listing
    page = c.get(f"/admin/ledger/callbacklog/{log.pk}/change/").content.decode()
    assert "/api/callbacks/daraja/***/" in page and "Referer" in page
    for html in (listing, page):
        assert STK_TOKEN not in html and C2B_TOKEN not in html and OLD_TOKEN not in html


# ---- the log -------------------------------------------------------------------------------------
def request_log_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "django.request"]


def test_refused_callback_is_logged_without_the_token(client, tokens, caplog):
    # The retired token after its deadline: refused (404) and a configured secret all the same.
    rotate(tokens, until=timezone.now() - dt.timedelta(minutes=1))
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert post(client, f"/api/callbacks/daraja/{STK_TOKEN}/", failure_body()).status_code == 404
        assert post(client, "/api/callbacks/daraja/some-guess/", failure_body()).status_code == 404
    lines = request_log_lines(caplog)
    assert len(lines) == 2 and all(line.startswith("Not Found: /api/callbacks/daraja/") for line in lines)
    assert not any(STK_TOKEN in line or "some-guess" in line for line in lines)
    assert STK_TOKEN not in caplog.text


def test_malformed_callback_to_the_right_url_is_logged_without_the_token(client, tokens, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert post(client, f"/api/callbacks/daraja/{STK_TOKEN}/", b"garbage{").status_code == 400
    lines = request_log_lines(caplog)
    assert lines == ["Bad Request: /api/callbacks/daraja/***/"]
    assert STK_TOKEN not in caplog.text


def test_every_configured_handler_redacts(tokens):
    handlers = django_settings.LOGGING["handlers"]
    assert handlers and all("redact_secrets" in h.get("filters", []) for h in handlers.values())
    reached = []  # every handler a record on these loggers reaches, pytest's own aside
    for name in ("", "django", "django.server", "django.request", "django-q", "ledger.api"):
        logger = logging.getLogger(name)
        while logger:
            reached += [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
            logger = logger.parent if logger.propagate else None
    assert reached and all(any(isinstance(f, RedactSecretsFilter) for f in h.filters) for h in reached)


def test_runserver_access_log_hides_the_token(tokens):
    handler = logging.getLogger("django.server").handlers[0]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        logging.getLogger("django.server").info(
            '"%s" %s %s', f"POST /api/callbacks/daraja/{STK_TOKEN}/ HTTP/1.1", "200", "33"
        )
    finally:
        handler.setStream(previous)
    line = stream.getvalue()
    assert "POST /api/callbacks/daraja/***/ HTTP/1.1" in line and STK_TOKEN not in line


def test_filter_redacts_arguments_objects_and_tracebacks(tokens):
    class Holder:
        def __str__(self):
            return f"holder of {C2B_TOKEN}"

    try:
        raise ValueError(f"bad url /api/callbacks/payhero/{OLD_TOKEN}/")
    except ValueError:
        args = (STK_TOKEN, Holder())
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s and %s", args, sys.exc_info())
    assert RedactSecretsFilter().filter(record) is True
    text = logging.Formatter().format(record)
    assert "*** and holder of ***" in text and "ValueError" in text
    assert STK_TOKEN not in text and C2B_TOKEN not in text and OLD_TOKEN not in text


def test_redaction_helpers(tokens):
    assert redact_text(f"a{STK_TOKEN}b") == "a***b"
    assert redact_json({STK_TOKEN: [f"x{C2B_TOKEN}", 1, None]}) == {"***": ["x***", 1, None]}
    assert (
        redact_text_strict(f"/api/callbacks/c2b/{OLD_TOKEN}/confirmation")
        == "/api/callbacks/c2b/***/confirmation"
    )
    assert redact_text("nothing secret") == "nothing secret"


# ---- the data migration ------------------------------------------------------------------------
def test_migration_redacts_stored_rows_and_is_idempotent(tokens):
    migration = importlib.import_module("ledger.migrations.0006_redact_stored_secrets")
    stk = stk_with_secrets()
    clean_stk = StkRequestFactory(raw_request={"CallBackURL": "https://shop.example/"})
    log = old_callback_log(body=f"legacy {OLD_TOKEN} and {STK_TOKEN}")
    clean_log = old_callback_log(path="/api/other/", headers={}, body="{}", detail="")

    changed = migration.redact_stored_secrets(
        StkRequest, CallbackLog, extra_secrets=[OLD_TOKEN], batch_size=1
    )

    assert changed == {"stk_requests": 1, "callback_logs": 1}
    stk.refresh_from_db()
    log.refresh_from_db()
    stored = json.dumps([stk.raw_request, stk.raw_response, stk.last_query_result, log.headers])
    stored += log.path + log.body + log.detail
    assert STK_TOKEN not in stored and C2B_TOKEN not in stored and OLD_TOKEN not in stored
    assert stk.raw_request["CallBackURL"] == "https://shop.example/api/callbacks/daraja/***/"
    assert log.path == "/api/callbacks/daraja/***/" and log.body == "legacy *** and ***"
    clean_stk.refresh_from_db()
    clean_log.refresh_from_db()
    assert clean_stk.raw_request == {"CallBackURL": "https://shop.example/"} and clean_log.body == "{}"
    assert migration.redact_stored_secrets(StkRequest, CallbackLog) == {"stk_requests": 0, "callback_logs": 0}


def test_migration_takes_the_old_callback_token_from_the_environment(monkeypatch):
    migration = importlib.import_module("ledger.migrations.0006_redact_stored_secrets")
    monkeypatch.setenv("CALLBACK_TOKEN", OLD_TOKEN)
    assert migration.legacy_secrets() == [OLD_TOKEN]
    monkeypatch.delenv("CALLBACK_TOKEN")
    assert migration.legacy_secrets() == []


# ---- the settings check --------------------------------------------------------------------------
def check_ids(settings, **values) -> set[str]:
    for name, value in values.items():
        setattr(settings, name, value)
    return {problem.id for problem in callback_tokens_check()}


@pytest.mark.parametrize(
    ("stk", "c2b", "expected"),
    [
        ("dev-stk-callback-token", "dev-c2b-callback-token", {"tillbook.E002", "tillbook.E012"}),
        ("", "", {"tillbook.E001", "tillbook.E011"}),
        ("short-token", GOOD_C2B, {"tillbook.E003"}),
        (GOOD_STK, "c2b/with/slashes/and-long-enough", {"tillbook.E014"}),
        (GOOD_STK, GOOD_STK, {"tillbook.E020"}),
        (GOOD_STK, GOOD_C2B, set()),
    ],
)
def test_token_check_with_debug_off(settings, stk, c2b, expected):
    assert check_ids(settings, DEBUG=False, STK_CALLBACK_TOKEN=stk, C2B_CALLBACK_TOKEN=c2b) == expected


def test_token_check_is_quiet_with_debug_on_except_for_empty_tokens(settings):
    assert check_ids(settings, DEBUG=True, STK_CALLBACK_TOKEN="dev-stk-callback-token") == set()
    assert check_ids(settings, DEBUG=True, STK_CALLBACK_TOKEN="") == {"tillbook.W002"}


def test_token_check_is_registered_and_errors_on_the_defaults(settings):
    settings.DEBUG = False
    settings.STK_CALLBACK_TOKEN = "dev-stk-callback-token"
    settings.C2B_CALLBACK_TOKEN = "dev-c2b-callback-token"
    ids = {problem.id for problem in run_checks(tags=["security"])}
    assert {"tillbook.E002", "tillbook.E012"} <= ids


def test_token_check_warns_about_a_previous_token_without_a_deadline(settings):
    ids = check_ids(
        settings,
        DEBUG=False,
        STK_CALLBACK_TOKEN=GOOD_STK,
        C2B_CALLBACK_TOKEN=GOOD_C2B,
        STK_CALLBACK_TOKEN_PREVIOUS=STK_TOKEN,
        STK_CALLBACK_TOKEN_PREVIOUS_UNTIL="",
    )
    assert ids == {"tillbook.W001"}
    assert check_ids(settings, STK_CALLBACK_TOKEN_PREVIOUS_UNTIL="2026-13-45T10:00:00") == {"tillbook.W001"}
    assert check_ids(settings, STK_CALLBACK_TOKEN_PREVIOUS_UNTIL="2026-12-01T12:00:00+03:00") == set()
