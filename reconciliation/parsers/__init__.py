"""Pure-Python parsers for M-Pesa codes, SMS, WhatsApp chat exports and statements.

No Django models are imported here, so everything is usable and testable without a database.
"""

from .codes import (
    LOOKALIKE_SLIPS,
    embedded_date,
    find_codes,
    is_date_plausible,
    is_lookalike,
    join_across_messages,
    lookalike_key,
    normalise_code,
)
from .merchant import our_names, payee_is_us
from .sms import ParsedSms, find_sms_in_text, parse_mpesa_sms
from .statement import (
    RowError,
    StatementFormatError,
    StatementParse,
    StatementRow,
    StatementStream,
    parse_statement,
    parse_till_sms_receipts,
    statement_rows_stream,
)
from .whatsapp import ChatExport, ChatExportError, ChatMessage, parse_chat_export

__all__ = [
    "ChatExport",
    "ChatExportError",
    "ChatMessage",
    "ParsedSms",
    "RowError",
    "StatementFormatError",
    "StatementParse",
    "StatementRow",
    "StatementStream",
    "embedded_date",
    "find_codes",
    "find_sms_in_text",
    "is_date_plausible",
    "is_lookalike",
    "join_across_messages",
    "LOOKALIKE_SLIPS",
    "lookalike_key",
    "normalise_code",
    "our_names",
    "parse_chat_export",
    "parse_mpesa_sms",
    "parse_statement",
    "parse_till_sms_receipts",
    "payee_is_us",
    "statement_rows_stream",
]
