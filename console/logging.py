"""Logging that never writes a secret: every handler in settings.LOGGING carries RedactSecretsFilter.

It redacts every configured secret and the token segment of any callback URL, and masks every
Kenyan mobile number (2547***678) in any of its written forms (console.kernel.redact.redact_log_text).

The callback tokens travel in URL paths, so without this the request log ("Bad Request:
/api/callbacks/daraja/<token>/"), runserver's access log and any traceback that quotes a URL
would print them. Handlers (not loggers) carry the filter because records logged on child
loggers such as ``django.request`` reach the handlers of their parents without passing the
parents' logger filters.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from console.kernel.redact import redact_log_text

WITHHELD = "[log message withheld: it could not be checked for secrets]"


def _redact_arg(value):
    # Only text is rewritten here; any other argument is covered once the message is rendered.
    return redact_log_text(value) if isinstance(value, str) else value


class RedactSecretsFilter(logging.Filter):
    """Rewrite a record so that no secret and no full phone number survives in what it prints.

    Contract: never drops a record and never raises (always returns True). ``msg`` and text
    ``args`` are redacted; then the message is rendered once, redacted, and stored back as ``msg``
    with ``args`` cleared, so no handler renders the raw arguments again (an object whose ``str()``
    shows a secret is covered too). The traceback and stack text are rendered and redacted the
    same way. If redaction itself fails, the message is withheld rather than printed unchecked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact(record)
        except Exception:  # noqa: BLE001 - logging must never break the caller
            record.msg, record.args = WITHHELD, None
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str):
            record.msg = redact_log_text(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(v) for v in record.args)
        # A broken format string is left for the handler to report, its arguments redacted above.
        with contextlib.suppress(TypeError, ValueError, KeyError):
            record.msg, record.args = redact_log_text(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info)
