"""Adding end users in bulk from a CSV: a preview that writes nothing, then the import."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import ngettext

from sessions_app import access, trail
from sessions_app.models import AuditEvent, EndUser
from sessions_app.validators import external_id_problem

IMPORT_COLUMNS = ("external_id", "name", "email")

_STAGED_SALT = "sessions_app.end_user_import.staged"

# Existing external ids are looked up this many at a time (under SQLite's bound-variable limit).
_LOOKUP_BATCH = 900


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
    if len(content) > settings.END_USER_IMPORT_MAX_BYTES:
        limit = settings.END_USER_IMPORT_MAX_BYTES // 1024
        return ImportPreview(error=f"The file is larger than {limit} KB.")
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
    if len(body) > settings.END_USER_IMPORT_MAX_ROWS:
        return ImportPreview(
            error=f"The file has {len(body)} rows; the limit is "
            f"{settings.END_USER_IMPORT_MAX_ROWS}."
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
    ids = [r[0] for r in body]
    existing: set[str] = set()
    for start in range(0, len(ids), _LOOKUP_BATCH):
        batch = ids[start : start + _LOOKUP_BATCH]
        existing.update(
            EndUser.objects.filter(external_id__in=batch).values_list("external_id", flat=True)
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
                ngettext("Imported %(n)d end user", "Imported %(n)d end users", len(preview.valid))
                % {"n": len(preview.valid)}
                + ngettext("; %(n)d row rejected.", "; %(n)d rows rejected.", len(preview.rejected))
                % {"n": len(preview.rejected)},
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


@dataclass(frozen=True)
class StagedPreview:
    """A checked CSV and, when it has rows to import, the signed token that confirms it."""

    preview: ImportPreview
    token: str = ""


def end_user_import_staged(
    *, content: bytes, actor: access.Actor, request: HttpRequest | None = None
) -> StagedPreview:
    """Preview a CSV (`end_user_import_checked`) and keep it on the server until it is confirmed.

    The file waits in the shared cache (every web process sees it) for
    END_USER_IMPORT_STAGED_SECONDS; the confirm step then posts only the token, signed and bound
    to this actor, so a large file is never sent back through a form field.
    """
    preview = end_user_import_checked(content=content, actor=actor, request=request)
    if preview.error or not preview.valid or getattr(actor, "pk", None) is None:
        return StagedPreview(preview)
    staged_id = uuid.uuid4().hex
    cache.set(_staged_key(staged_id), content, timeout=settings.END_USER_IMPORT_STAGED_SECONDS)
    token = signing.dumps({"id": staged_id, "by": actor.pk}, salt=_STAGED_SALT)
    return StagedPreview(preview, token)


def end_user_import_confirmed(
    *, token: str, actor: access.Actor, request: HttpRequest | None = None
) -> tuple[ImportPreview, int]:
    """Import the CSV that `token` names (`end_user_import`), once.

    A forged, expired, already used or another user's token imports nothing and is audited as
    one rejected `enduser.import` event; an actor without the permission is refused first.
    """
    content = _claim_staged(token, actor)
    if content is None:
        if not access.may(actor, "sessions_app.add_enduser"):
            return end_user_import(content=b"", actor=actor, request=request)
        message = "This preview has expired or was already imported; upload the file again."
        _audit_import(AuditEvent.Outcome.REJECTED, message, actor=actor, request=request)
        return ImportPreview(error=message), 0
    return end_user_import(content=content, actor=actor, request=request)


def _claim_staged(token: str, actor: access.Actor) -> bytes | None:
    """The content a valid token names, removed from the server so it imports at most once."""
    try:
        named = signing.loads(
            token, salt=_STAGED_SALT, max_age=settings.END_USER_IMPORT_STAGED_SECONDS
        )
    except signing.BadSignature:
        return None
    if not isinstance(named, dict) or named.get("by") != getattr(actor, "pk", None):
        return None
    key = _staged_key(str(named.get("id")))
    content = cache.get(key)
    # Of two confirms at once, only the one whose delete removed the entry imports.
    if not isinstance(content, bytes) or not cache.delete(key):
        return None
    return content


def _staged_key(staged_id: str) -> str:
    return f"end-user-import:{staged_id}"
