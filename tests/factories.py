"""Plain factories the test modules share: staff, end users, sessions, toolkits, clients.

Fixtures live in conftest.py and are built from these; a test that needs one more object of a
kind calls the factory directly. Sessions come in three kinds: `give_session` goes through the real
session service against the emulator (Composio knows the session), `store_session` only writes
the row (for pages that read what the console stored and never call Composio), and
`create_unstored_session` leaves Composio's session unstored, for reconciliation to settle.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import Group, Permission, User
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app import roles, trail
from sessions_app.bulk import jobs as bulk
from sessions_app.composio.emulator.catalog import load_catalog
from sessions_app.models import (
    AuditEvent,
    BulkJob,
    BulkJobItem,
    EndUser,
    SessionToolkit,
    Toolkit,
    ToolRouterSession,
)
from sessions_app.tool_router import rollups, sessions, toolkit_catalog
from tests.helpers import refuse_session_inserts

# The checkout: manage.py, templates/, docs/ (subprocesses run here).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The emulator's API key in the tests (worker processes are given it too).
EMULATOR_KEY = "emu-test-key-0123456789"
# The toolkit catalog the emulator ships with, as its catalog.json lists it.
SHIPPED_CATALOG = load_catalog()
# The toolkits on the allow-list in the `catalog` fixture; every other catalog entry is not.
ALLOWED = ["github", "gmail", "slack", "notion"]
# The header HTMX sends with each of its requests: the console's pages answer with a fragment.
HX = {"HX-Request": "true"}
# The end-user admin's list, where the session actions are posted.
ENDUSER_CHANGELIST = "admin:sessions_app_enduser_changelist"
# Secrets no page or export may show: the MCP URL `store_grant` stores, an API key to set.
SECRET_MCP_URL = "https://mcp.example.test/tool_router/trs_secret/mcp?token=SENTINEL-MCP-TOKEN"
SECRET_API_KEY = "sk-SENTINEL-API-KEY-123456"
# The audit chain's key in the `keyed` fixture ("<key id>:<secret>").
AUDIT_KEY_K1 = "k1:first-secret-of-at-least-thirty-two-chars"


def make_staff(username: str, *groups: str) -> User:
    """A staff user in the named role groups, with the password "pw-<username>"."""
    user = User.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


# Every permission some role holds except revealing MCP URLs: a staff user holding these sees
# every page a role may open, yet may not see a session id in full (issue 12, locators).
NO_REVEAL_PERMISSIONS = sorted(
    {p for perms in roles.ROLE_PERMISSIONS.values() for p in perms}
    - {"sessions_app.reveal_mcp_url"}
)


def make_staff_with(username: str, permissions: Iterable[str]) -> User:
    """A staff user in no role group holding exactly `permissions` ("app_label.codename")."""
    user = User.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def make_end_user(external_id: str, display_name: str = "", email: str = "") -> EndUser:
    """One end user, with no session."""
    return EndUser.objects.create(external_id=external_id, display_name=display_name, email=email)


def record_events(count: int, start: int = 1) -> list[AuditEvent]:
    """`count` audit events written through the trail, their reasons "event <start>" on."""
    return [
        trail.record(action="catalog.sync", outcome="success", reason=f"event {n}")
        for n in range(start, start + count)
    ]


def make_finished_job(
    end_user: EndUser, session: ToolRouterSession, started_by: User, at: datetime
) -> BulkJob:
    """An ended refresh job with one succeeded item (`end_user`'s `session`): cancel and retry
    answer without starting any work."""
    job = BulkJob.objects.create(
        kind=BulkJob.Kind.REFRESH,
        state=BulkJob.State.FINISHED,
        started_by=started_by,
        started_by_username=started_by.username,
        total=1,
        counts={"succeeded": 1},
        finished_at=at,
    )
    BulkJobItem.objects.create(
        job=job, end_user=end_user, state=BulkJobItem.State.SUCCEEDED, session=session
    )
    return job


def make_authenticator(user: User) -> int:
    """A set of recovery codes for `user` (allauth's own activation), its Authenticator's pk."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    return RecoveryCodes.activate(user).instance.pk


def make_axes_records(at: datetime) -> dict[str, int]:
    """One record of each kind django-axes keeps of a login, their ids by model name."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    login = {
        "user_agent": "pytest",
        "ip_address": "127.0.0.1",
        "username": "someone",
        "http_accept": "*/*",
        "path_info": "/accounts/login/",
        "attempt_time": at,
    }
    attempt = AccessAttempt.objects.create(
        **login, get_data="", post_data="", failures_since_start=1
    )
    return {
        "accessattempt": attempt.pk,
        "accesslog": AccessLog.objects.create(**login).pk,
        "accessfailurelog": AccessFailureLog.objects.create(**login).pk,
    }


def make_task_result(at: datetime) -> int:
    """A queued task's row in the database task backend: its id."""
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.create(
        enqueued_at=at,
        args_kwargs={"args": [], "kwargs": {}},
        task_path="sessions_app.bulk.runner.nothing",
        backend_name="default",
        run_after=at,
        exception_class_path="",
        traceback="",
    ).pk


def make_end_users(count: int, prefix: str = "usr", digits: int = 5) -> list[EndUser]:
    """`count` end users "<prefix>_00000", "<prefix>_00001", ... (`digits` wide) in one insert,
    returned in external-id order."""
    EndUser.objects.bulk_create(
        EndUser(external_id=f"{prefix}_{n:0{digits}d}") for n in range(count)
    )
    made = EndUser.objects.filter(external_id__startswith=prefix + "_")
    return list(made.order_by("external_id"))


def allow_toolkits(slugs: Iterable[str] = ALLOWED) -> None:
    """Put these synced toolkits on the allow-list."""
    Toolkit.objects.filter(slug__in=list(slugs)).update(is_allowed=True)


def sync_catalog(allowed: Iterable[str] = ALLOWED, actor: User | None = None) -> None:
    """Sync Composio's catalog (the emulator's) into the database and allow `allowed`."""
    toolkit_catalog.toolkit_catalog_sync(actor=actor)
    allow_toolkits(allowed)


def give_session(end_user: EndUser, toolkits: list[str], actor: User | None) -> ToolRouterSession:
    """An active session made by the session service, so Composio (the emulator) has it too."""
    result = sessions.tool_router_session_create(end_user=end_user, toolkits=toolkits, actor=actor)
    assert result.ok, result.message
    assert result.session is not None
    return result.session


def create_unstored_session(
    end_user: EndUser, toolkits: list[str], actor: User | None
) -> sessions.SessionResult:
    """A create Composio (the emulator) carries out but the console fails to store: the session
    insert is refused, so the intent is left unknown with Composio's session id on it."""
    with refuse_session_inserts():
        return sessions.tool_router_session_create(
            end_user=end_user, toolkits=toolkits, actor=actor
        )


def store_session(
    end_user: EndUser,
    session_id: str,
    *,
    status: str = "active",
    mcp_url: str = "",
    toolkits: Iterable[str] = ("github",),
    **fields: object,
) -> ToolRouterSession:
    """A session row as the console stores one, without Composio knowing it.

    The MCP URL defaults to one made from the session id, so each session has its own.
    """
    return ToolRouterSession.objects.create(
        end_user=end_user,
        session_id=session_id,
        mcp_url=mcp_url or f"https://mcp.example.test/tool_router/{session_id}/mcp",
        toolkits=list(toolkits),
        status=status,
        **fields,
    )


def store_deleted_session(
    end_user: EndUser, session_id: str, deleted_by: User, **fields: object
) -> ToolRouterSession:
    """A session row deleted now (`store_session`), with the `session.delete` audit event that
    names who deleted it."""
    session = store_session(
        end_user, session_id, status="deleted", deleted_at=timezone.now(), **fields
    )
    trail.session_recorder("session.delete", session, actor=deleted_by)(AuditEvent.Outcome.SUCCESS)
    return session


def store_grant(
    external_id: str,
    slugs: list[str],
    *,
    by: User | None = None,
    status: str = "active",
    created_at: datetime | None = None,
    **fields: object,
) -> ToolRouterSession:
    """A stored session (`store_session`) granting these toolkits to the end user `external_id`.

    The end user and each toolkit are made when new; each toolkit is linked as a SessionToolkit,
    the MCP URL is SECRET_MCP_URL, and `created_at` backdates the session.
    """
    end_user, _ = EndUser.objects.get_or_create(external_id=external_id)
    session = store_session(
        end_user,
        f"trs_{external_id}_{ToolRouterSession.objects.count()}",
        status=status,
        mcp_url=SECRET_MCP_URL,
        toolkits=slugs,
        created_by=by,
        **fields,
    )
    if created_at is not None:
        ToolRouterSession.objects.filter(pk=session.pk).update(created_at=created_at)
        session.refresh_from_db()
    for slug in slugs:
        toolkit, _ = Toolkit.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
        SessionToolkit.objects.create(session=session, toolkit=toolkit)
    # The rows were written without the services: the access report's rollup is recomputed.
    rollups.rebuild()
    return session


def start_bulk_job(kind: str, toolkits: list[str] | None, actor: User) -> BulkJob:
    """A bulk job of this kind over every end user, started through the bulk service."""
    return bulk.bulk_job_start(
        kind=kind, end_users=EndUser.objects.all(), toolkits=toolkits, actor=actor
    )


def client_for(user: User | None, **client_options: object) -> Client:
    """A new test client logged in as `user` (anonymous for None); options go to Client()."""
    client = Client(**client_options)
    if user is not None:
        client.force_login(user)
    return client


def admin_action(
    client: Client, action: str, end_users: Iterable[EndUser], *, url: str = "", **fields: object
) -> HttpResponse:
    """The first step of an end-user admin action: its intermediate page for these end users."""
    data = {"action": action, "_selected_action": [u.pk for u in end_users], "index": "0"}
    return client.post(url or reverse(ENDUSER_CHANGELIST), {**data, **fields})


def admin_action_confirmed(
    client: Client,
    action: str,
    end_users: Iterable[EndUser],
    toolkits: list[str] | None = None,
    *,
    url: str = "",
    follow: bool = True,
    **fields: object,
) -> HttpResponse:
    """The second step of an end-user admin action: confirmed (post=yes), with these toolkits."""
    data = {"action": action, "_selected_action": [u.pk for u in end_users], "post": "yes"}
    if toolkits is not None:
        data["toolkits"] = toolkits
    return client.post(url or reverse(ENDUSER_CHANGELIST), {**data, **fields}, follow=follow)
