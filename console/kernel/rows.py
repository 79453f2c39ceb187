"""Write many model rows' fields in one round of parametrised UPDATEs.

Django's ``bulk_update`` builds a CASE WHEN per row and field; for a batch of a thousand claims
with fifteen fields the expression tree costs more than the database work. ``rows_update``
sends one ``UPDATE … SET f = %s, … WHERE pk = %s`` per row through ``executemany``, with each
value prepared by its field, as ``save(update_fields=…)`` would. No signals, no auto_now: the
caller sets what it changes (call inside its transaction).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def rows_update(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Save ``fields`` of every object in ``objs`` (all of one model). Returns the rows written."""
    if not objs:
        return 0
    meta = objs[0]._meta
    concrete = [meta.get_field(name) for name in fields]
    qn = connection.ops.quote_name
    sql = "UPDATE {table} SET {sets} WHERE {pk} = %s".format(  # noqa: S608 (quoted model names; values are parameters)
        table=qn(meta.db_table),
        sets=", ".join(f"{qn(field.column)} = %s" for field in concrete),
        pk=qn(meta.pk.column),
    )
    params = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in concrete] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    return len(params)
