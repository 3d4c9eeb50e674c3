"""Adding end users in bulk from a CSV: a preview that writes nothing, then the import."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from sessions_app import access, trail
from sessions_app.models import AuditEvent, EndUser
from sessions_app.validators import external_id_problem

IMPORT_MAX_BYTES = 2 * 1024 * 1024

IMPORT_MAX_ROWS = 10_000

IMPORT_COLUMNS = ("external_id", "name", "email")


@dataclass(frozen=True)
class ImportRow:
    line: int
    external_id: str
    name: str
    email: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportPreview:
    """A parsed CSV: `error` if the file itself is malformed (then nothing may be written)."""

    valid: tuple[ImportRow, ...] = ()
    rejected: tuple[ImportRow, ...] = ()
    error: str = ""


def end_user_get_or_create(*, external_id: str) -> tuple[EndUser, bool]:
    """The end user with this external id, created if there is none (and whether it was)."""
    return EndUser.objects.get_or_create(external_id=external_id)


def end_user_import_preview(*, content: bytes) -> ImportPreview:
    """Parse and check a CSV of end users (external_id, name, email) without writing anything.

    A malformed file (not UTF-8 text, wrong header, a row with the wrong number of columns, too
    big) gives `error`; otherwise each row is valid or rejected with its reasons (bad external id,
    duplicate in the file, already exists, bad email, name too long).
    """
    if len(content) > IMPORT_MAX_BYTES:
        return ImportPreview(error=f"The file is larger than {IMPORT_MAX_BYTES // 1024} KB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ImportPreview(error="The file is not UTF-8 text; save it as CSV (UTF-8).")
    if "\x00" in text:
        return ImportPreview(error="The file is not a CSV text file (it contains NUL bytes).")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return ImportPreview(error=f"The file is not valid CSV: {exc}.")
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return ImportPreview(error="The file is empty.")
    header = tuple(cell.strip().lower() for cell in rows[0])
    if header != IMPORT_COLUMNS:
        return ImportPreview(
            error="The first row must be the header external_id,name,email; found "
            + ",".join(rows[0])[:100]
            + "."
        )
    body = rows[1:]
    if not body:
        return ImportPreview(error="The file has a header but no rows.")
    if len(body) > IMPORT_MAX_ROWS:
        return ImportPreview(
            error=f"The file has {len(body)} rows; the limit is {IMPORT_MAX_ROWS}."
        )
    for number, row in enumerate(body, start=2):
        if len(row) != len(IMPORT_COLUMNS):
            return ImportPreview(
                error=f"Row {number} has {len(row)} columns; every row needs exactly 3 "
                "(external_id, name, email)."
            )
    return _check_rows(body)


def _check_rows(body: list[list[str]]) -> ImportPreview:
    """Each row valid, or rejected with its reasons (bad external id, duplicate in the file,
    already exists, bad email, name too long)."""
    existing = set(
        EndUser.objects.filter(external_id__in=[r[0] for r in body]).values_list(
            "external_id", flat=True
        )
    )
    seen: set[str] = set()
    valid: list[ImportRow] = []
    rejected: list[ImportRow] = []
    for number, (external_id, name, email) in enumerate(body, start=2):
        problems: list[str] = []
        problem = external_id_problem(external_id)
        if problem:
            problems.append(problem)
        elif external_id in seen:
            problems.append("This external id appears earlier in the file.")
        elif external_id in existing:
            problems.append("An end user with this external id already exists (left unchanged).")
        seen.add(external_id)
        if len(name) > 200:
            problems.append(f"The name is {len(name)} characters long; the limit is 200.")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append("The email address is not valid.")
        row = ImportRow(number, external_id, name.strip(), email.strip(), tuple(problems))
        (rejected if problems else valid).append(row)
    return ImportPreview(valid=tuple(valid), rejected=tuple(rejected))


def end_user_import(
    *,
    content: bytes,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None = None,
) -> tuple[ImportPreview, int]:
    """Create the valid rows of a CSV of end users, all in one transaction; skip rejected rows.

    Writes nothing if the file is malformed, or if the actor may not add end users. Returns the
    preview it acted on and how many end users it created. One audit event.
    """
    if not access.may(actor, "sessions_app.add_enduser"):
        access.refuse(
            operation="enduser.import",
            reason="Importing end users needs the add end user permission.",
            actor=actor,
            request=request,
            missing=["sessions_app.add_enduser"],
        )
        return ImportPreview(error="You may not add end users: permission denied."), 0
    preview = end_user_import_preview(content=content)
    if preview.error:
        _audit_import(AuditEvent.Outcome.REJECTED, preview.error, actor=actor, request=request)
        return preview, 0
    try:
        with transaction.atomic():
            EndUser.objects.bulk_create(
                [
                    EndUser(external_id=r.external_id, display_name=r.name, email=r.email)
                    for r in preview.valid
                ]
            )
            _audit_import(
                AuditEvent.Outcome.SUCCESS,
                f"Imported {len(preview.valid)} end users; {len(preview.rejected)} rows rejected.",
                actor=actor,
                request=request,
                details={
                    "created": len(preview.valid),
                    "rejected": [
                        {"line": r.line, "problems": list(r.problems)} for r in preview.rejected
                    ][:100],
                },
            )
    except IntegrityError:
        message = "Someone added some of these end users meanwhile; nothing was imported. Retry."
        _audit_import(AuditEvent.Outcome.FAILURE, message, actor=actor, request=request)
        return ImportPreview(error=message), 0
    return preview, len(preview.valid)


def _audit_import(
    outcome: str,
    reason: str,
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    request: HttpRequest | None,
    details: dict[str, object] | None = None,
) -> None:
    trail.record(
        action="enduser.import",
        outcome=outcome,
        actor=actor,
        request=request,
        reason=reason,
        details=details,
    )


def end_user_import_checked(
    *, content: bytes, actor: access.Actor, request: HttpRequest | None = None
) -> ImportPreview:
    """Preview a CSV of end users (`end_user_import_preview`); writes no end user.

    A malformed file is audited as one rejected `enduser.import` event.
    """
    preview = end_user_import_preview(content=content)
    if preview.error:
        # Given a malformed file the import service writes nothing but that one event; letting
        # it see the file keeps the event written in one place.
        end_user_import(content=content, actor=actor, request=request)
    return preview
