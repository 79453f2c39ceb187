"""Showing what came from outside (gateway requests and answers, callback bodies and headers) on
the payment admin pages: always through console.kernel.redact, so a secret stored before
redaction existed is still never displayed."""

from __future__ import annotations

import json

from django.utils.html import format_html

from console.kernel.redact import redact_json_strict, redact_text_strict


def pretty_json(value) -> str:
    """A stored JSON value (or JSON text) indented for reading, with every secret redacted."""
    if isinstance(value, str):
        value = redact_text_strict(value)
        try:
            value = json.loads(value)
        except ValueError:
            return format_html('<pre class="whitespace-pre-wrap text-xs">{}</pre>', value)
    value = redact_json_strict(value)
    text = (
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) if value not in ({}, None) else "—"
    )
    return format_html('<pre class="whitespace-pre-wrap text-xs max-w-2xl">{}</pre>', text)
