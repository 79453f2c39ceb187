"""Tables of figures for admin pages: amount columns right-aligned in tabular figures, with
thousands separators, and a table that scrolls inside its own box on a phone."""

from __future__ import annotations

from console.kernel.money import money

FIGURES_TABLE = "admin/figures_table.html"


def figures_table(headers, rows, *, amounts=(), counts=(), title: str = "", testid: str = "") -> dict:
    """Context for templates/admin/figures_table.html. ``amounts`` are the indexes of money columns
    (shown as ``1,500.00``), ``counts`` those of other numbers; both are right-aligned."""
    numeric = set(amounts) | set(counts)

    def cell(i, value):
        if i in amounts and value not in (None, ""):
            value = money(value) if not isinstance(value, str) else value
        return {"value": "" if value is None else value, "num": i in numeric}

    return {
        "title": title,
        "testid": testid,
        "headers": [{"label": h, "num": i in numeric} for i, h in enumerate(headers)],
        "rows": [[cell(i, v) for i, v in enumerate(row)] for row in rows],
    }
