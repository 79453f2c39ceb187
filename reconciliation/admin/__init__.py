"""Admin for reconciliation: the claims queue (claims.py), receipts and imports (receipts.py)."""

from reconciliation.admin import claims, close, messages, receipts, statements  # noqa: F401  (registers the ModelAdmins)
