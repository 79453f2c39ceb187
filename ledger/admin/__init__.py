"""Admin for payments (orders.py, stk.py, callbacks.py), the books (books.py) and ledger exports
(exports.py)."""

from ledger.admin import books, callbacks, exports, orders, stk  # noqa: F401  (registers the ModelAdmins)
