"""Write model rows with less machinery than the ORM: many rows' fields in one round of
parametrised UPDATEs (rows_update), and one new row in one INSERT (row_insert).

Django's ``bulk_update`` builds a CASE WHEN per row and field; for a batch of a thousand claims
with fifteen fields the expression tree costs more than the database work. ``rows_update``
sends the rows as one ``UPDATE … FROM (VALUES …)`` on PostgreSQL (one ``UPDATE … WHERE pk = %s``
per row through ``executemany`` elsewhere), each value prepared by its field, as
``save(update_fields=…)`` would. No signals, no auto_now: the
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
    params = [
        [obj.pk] + [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in concrete]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement per thousand rows: UPDATE … FROM (VALUES …), the values rendered by the
            # driver's own quoting (mogrify), each column cast to its type (NULLs would be text).
            sets = ", ".join(
                f"{qn(f.column)} = v.{qn(f.column)}::{f.cast_db_type(connection)}" for f in concrete
            )
            names = ", ".join(qn(c) for c in ["pk", *(f.column for f in concrete)])
            row_sql = "(" + ", ".join(["%s"] * (len(concrete) + 1)) + ")"
            for start in range(0, len(params), 1000):
                values = ",".join(
                    cursor.mogrify(row_sql, row).decode() for row in params[start : start + 1000]
                )
                cursor.execute(
                    f"UPDATE {qn(meta.db_table)} AS t SET {sets} FROM (VALUES {values}) AS v({names}) "  # noqa: S608 (quoted model names; values quoted by the driver)
                    f"WHERE t.{qn(meta.pk.column)} = v.pk"
                )
        else:
            sets = ", ".join(f"{qn(field.column)} = %s" for field in concrete)
            sql = f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {qn(meta.pk.column)} = %s"  # noqa: S608 (quoted model names; values are parameters)
            cursor.executemany(sql, [row[1:] + row[:1] for row in params])
    return len(params)


def row_insert(obj: models.Model) -> models.Model:
    """INSERT one new object in one statement and set its primary key: ``save()``'s result for a
    new row (defaults, auto_now_add, each value prepared by its field) without its machinery.

    For the hottest path only (the callback edge stores one row per request): no signals, no
    full_clean. Both databases return the key with ``RETURNING`` (SQLite 3.35+).
    """
    meta = obj._meta
    fields, sql = _insert_sql(type(obj))
    params = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        setattr(obj, meta.pk.attname, cursor.fetchone()[0])
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


_INSERT_SQL: dict[type, tuple[list, str]] = {}


def _insert_sql(model: type[models.Model]) -> tuple[list, str]:
    if model not in _INSERT_SQL:
        meta = model._meta
        qn = connection.ops.quote_name
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        columns = ", ".join(qn(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        _INSERT_SQL[model] = (
            fields,
            f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({marks}) RETURNING {qn(meta.pk.column)}",  # noqa: S608 (quoted model names; values are parameters)
        )
    return _INSERT_SQL[model]
