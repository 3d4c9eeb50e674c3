"""Many rows, each with its own values, updated in one statement: `UPDATE ... FROM (VALUES ...)`,
which PostgreSQL and SQLite both speak.

Building the same update as CASE expressions through the ORM cost more CPU than the statements
it saved (the bulk runner writes its settled items and marks this way).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


def update_from_values(
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    constants: str = "",
    where: str = "",
    params: Sequence[object] = (),
) -> int:
    """Set `columns` (field names) of each row of `model` whose primary key is the first value of
    a row in `rows` to the row's other values, in order. `constants` adds SQL assignments and
    `where` SQL conditions on the table (with `params`, in that order). Returns the rows updated.
    """
    if not rows:
        return 0
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = [meta.pk, *(meta.get_field(name) for name in columns)]
    values: list[object] = []
    for row in rows:
        for field, value in zip(fields, row, strict=True):
            if isinstance(value, enum.Enum):  # a choices member: its value, whatever the driver
                value = value.value
            values.append(field.get_db_prep_value(value, connection))

    def cast(index: int) -> str:
        # VALUES columns are column1, column2, ... in both databases; PostgreSQL must be told
        # their types (a column of NULLs is text to it).
        return f"CAST(v.column{index + 1} AS {fields[index].cast_db_type(connection)})"

    sets = [f"{quote(field.column)} = {cast(i)}" for i, field in enumerate(fields) if i]
    if constants:
        sets.append(constants)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"UPDATE {table} SET {', '.join(sets)} "
        f"FROM (VALUES {', '.join([placeholders] * len(rows))}) AS v "
        f"WHERE {table}.{quote(meta.pk.column)} = {cast(0)}"
    )
    if where:
        sql += f" AND {where}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *params])
        return cursor.rowcount
