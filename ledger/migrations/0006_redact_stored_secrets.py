"""Redact secrets stored before redaction existed: the callback token inside every STK request's
callback URL (StkRequest.raw_request/raw_response/last_query_result) and in the path, headers,
body and detail of every inbound callback (CallbackLog).

Uses the secrets configured when it runs (console.kernel.redact), the old CALLBACK_TOKEN if the
environment still has it (the rows were written with it), and the token segment of any callback
URL whatever its value. Idempotent and batched (each batch commits on its own, so a large table
is not one long transaction); reversing it does nothing, since a redacted secret is gone.
"""

import os

from django.db import migrations, transaction

from console.kernel.redact import REDACTED, redact_text_strict

BATCH_SIZE = 1000
STK_FIELDS = ("raw_request", "raw_response", "last_query_result")
CALLBACK_TEXT_FIELDS = ("path", "body", "detail")
CALLBACK_JSON_FIELDS = ("headers",)


def legacy_secrets() -> list[str]:
    """The single CALLBACK_TOKEN of earlier versions, if the environment still sets it."""
    token = os.environ.get("CALLBACK_TOKEN", "")
    return [token] if len(token) >= 4 else []


def _text(value: str, extra: list[str]) -> str:
    value = redact_text_strict(value)
    for secret in extra:
        value = value.replace(secret, REDACTED)
    return value


def _json(value, extra: list[str]):
    if isinstance(value, str):
        return _text(value, extra)
    if isinstance(value, dict):
        return {_text(str(k), extra): _json(v, extra) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v, extra) for v in value]
    return value


def _rewrite(model, text_fields, json_fields, extra, batch_size) -> int:
    fields = [*text_fields, *json_fields]
    changed_total, last_pk = 0, 0
    while True:
        rows = list(model.objects.filter(pk__gt=last_pk).order_by("pk").only("pk", *fields)[:batch_size])
        if not rows:
            return changed_total
        last_pk = rows[-1].pk
        changed = []
        for row in rows:
            dirty = False
            for name in fields:
                old = getattr(row, name)
                new = _text(old or "", extra) if name in text_fields else _json(old, extra)
                if new != old:
                    setattr(row, name, new)
                    dirty = True
            if dirty:
                changed.append(row)
        if changed:
            with transaction.atomic():
                model.objects.bulk_update(changed, fields, batch_size=batch_size)
            changed_total += len(changed)


def redact_stored_secrets(StkRequest, CallbackLog, *, extra_secrets=(), batch_size=BATCH_SIZE) -> dict:
    """Rewrite every StkRequest and CallbackLog with secrets redacted; returns rows changed per model.

    Takes the model classes (historical ones in the migration, the real ones in tests). Safe to
    run any number of times: a second run changes nothing.
    """
    extra = sorted({s for s in extra_secrets if len(s) >= 4}, key=len, reverse=True)
    return {
        "stk_requests": _rewrite(StkRequest, (), STK_FIELDS, extra, batch_size),
        "callback_logs": _rewrite(CallbackLog, CALLBACK_TEXT_FIELDS, CALLBACK_JSON_FIELDS, extra, batch_size),
    }


def forwards(apps, schema_editor):
    redact_stored_secrets(
        apps.get_model("ledger", "StkRequest"),
        apps.get_model("ledger", "CallbackLog"),
        extra_secrets=legacy_secrets(),
    )


class Migration(migrations.Migration):
    # Batches commit one by one: a big table is never locked in one long transaction.
    atomic = False

    dependencies = [
        ("ledger", "0005_money_integrity"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
