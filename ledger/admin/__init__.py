"""Admin for payments (orders.py, stk.py, callbacks.py) and the books (books.py)."""

from ledger.admin import books, callbacks, orders, stk  # noqa: F401  (registers the ModelAdmins)
