"""The PostgreSQL role split: an owner role owns the tables; the application's role may only
SELECT and INSERT on the audit table (and keeps ordinary rights on every other table).

Without ownership the application's role can neither UPDATE, DELETE nor TRUNCATE an event, nor
disable the triggers that refuse those, nor drop the table (docs/audit.md).
"""

from __future__ import annotations

import re

from django.db import connection

from sessions_app.models import AuditEvent

_ROLE = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


class BadRole(ValueError):
    """Not a plain lower-case PostgreSQL role name."""


def _role(name: str) -> str:
    if not _ROLE.match(name):
        raise BadRole(f"{name!r} is not a plain lower-case PostgreSQL role name.")
    return connection.ops.quote_name(name)


def grant_statements(*, app_role: str, owner_role: str) -> list[str]:
    """The statements, in order, that give every table to `owner_role` and leave `app_role`
    SELECT and INSERT on the audit table, full DML on the others. Reads the live table list."""
    app, owner = _role(app_role), _role(owner_role)
    audit = AuditEvent._meta.db_table
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        tables = sorted(connection.introspection.table_names(cursor))
    statements = []
    for table in tables:
        statements.append(f"ALTER TABLE {quote(table)} OWNER TO {owner}")
        statements.append(f"REVOKE ALL ON {quote(table)} FROM PUBLIC, {app}")
        rights = "SELECT, INSERT" if table == audit else "SELECT, INSERT, UPDATE, DELETE"
        statements.append(f"GRANT {rights} ON {quote(table)} TO {app}")
    # The id sequences (owned along with their tables): INSERT needs nextval, never setval.
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}")
    statements.append(f"ALTER FUNCTION {quote(audit + '_refuse_change')}() OWNER TO {owner}")
    return statements


def apply_grants(statements: list[str]) -> None:
    """Run the statements in one transaction (connected as a role that may change ownership)."""
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
