"""Admin for payments (orders.py), the books (books.py) and ledger exports (exports.py)."""

from ledger.admin import books, exports, orders  # noqa: F401  (registers the ModelAdmins)
