"""Admin for payments (orders.py) and the books (books.py)."""

from ledger.admin import books, orders  # noqa: F401  (registers the ModelAdmins)
