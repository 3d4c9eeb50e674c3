"""Secrets suite: every flow once with a sentinel COMPOSIO_API_KEY, then search everything for it.

The sentinel must appear in no response body or header (cookies decoded), no table of any app
(session data decoded), no captured log line (every logger at DEBUG) and not in the audit trail.
The full MCP URL of any session appears only in reveal responses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import AuditEvent, EndUser, Toolkit, ToolRouterSession
from tests.factories import (
    ALLOWED,
    SHIPPED_CATALOG,
    admin_action,
    admin_action_confirmed,
    client_for,
)

SENTINEL = "ak_SENTINEL_9f2c7e1b4d6a8035"
ROOT_PASSWORD = "pw-root-long-enough"

pytestmark = pytest.mark.django_db


@pytest.fixture
def sentinel_composio(settings, immediate: None) -> Iterator[Emulator]:
    """A Composio of our own that accepts only the sentinel key; the console configured for it."""
    emu = Emulator(api_key=SENTINEL, host="127.0.0.1", port=0)
    emu.set_catalog([t for t in SHIPPED_CATALOG if t["slug"] in [*ALLOWED, "jira"]])
    emu.start()
    settings.COMPOSIO_API_KEY = SENTINEL
    settings.COMPOSIO_BASE_URL = emu.base_url
    settings.COMPOSIO_READ_TIMEOUT = 5.0
    settings.COMPOSIO_CONNECT_TIMEOUT = 2.0
    settings.TOOL_ROUTER_SYNC_LIMIT = 3
    settings.BULK_RATE_PER_MINUTE = 600_000
    composio_seam.reset_client()
    yield emu
    composio_seam.reset_client()
    emu.stop()


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog sees every record of every logger, whatever LOGGING set (levels, propagate)."""
    caplog.set_level(logging.DEBUG)
    saved = []
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    yield caplog
    for logger, level, disabled in saved:
        logger.setLevel(level)
        logger.disabled = disabled
        if caplog.handler in logger.handlers:
            logger.removeHandler(caplog.handler)


@dataclass
class Seen:
    """Every response of the run, labelled; `reveals` are the only ones allowed the MCP URL."""

    responses: list[tuple[str, object, bytes]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, response) -> None:  # noqa: ANN001 - HttpResponse or streaming
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content)
        else:
            body = response.content
        self.responses.append((label, response, body))


def _cookie_texts(response) -> list[str]:  # noqa: ANN001
    """Cookie values, with the messages cookie decoded (it is signed, compressed JSON)."""
    texts = []
    for morsel in response.cookies.values():
        texts.append(morsel.OutputString())
        if morsel.key == "messages" and morsel.value:
            decoded = CookieStorage(HttpRequest())._decode(morsel.value)
            texts.append(repr([str(m) for m in decoded or []]))
    return texts


def _header_text(response) -> str:  # noqa: ANN001
    return "\n".join(f"{k}: {v}" for k, v in response.headers.items()) + "\n".join(
        _cookie_texts(response)
    )


def _command(seen: Seen, name: str, *args: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
    seen.outputs.append((name, out.getvalue() + err.getvalue()))


def _changelist(client: Client, action: str, users: list[EndUser], toolkits: list[str] | None):
    """Both steps of an end-user admin action: (the intermediate page, the confirmed result)."""
    first = admin_action(client, action, users)
    return first, admin_action_confirmed(client, action, users, toolkits)


def _both_steps(
    seen: Seen,
    label: str,
    client: Client,
    action: str,
    users: list[EndUser],
    toolkits: list[str] | None,
) -> None:
    """An end-user admin action, its intermediate page seen as "<label> step one" and its
    confirmed result as "<label>"."""
    step_one, result = _changelist(client, action, users, toolkits)
    seen.add(f"{label} step one", step_one)
    seen.add(label, result)


def _logged_in_staff(django_user_model) -> tuple[User, dict[str, Client]]:  # noqa: ANN001
    """A superuser made now; a logged-in client for it and each named actor the test asked for
    (every user there is), by username."""
    root = django_user_model.objects.create_superuser("root", password=ROOT_PASSWORD)
    return root, {who.username: client_for(who) for who in User.objects.all()}


def _log_in_and_out(seen: Seen) -> None:
    """Log in and out through the real views (a failure first: audited)."""
    anon = Client()
    seen.add("login page", anon.get(reverse("login")))
    seen.add("login failed", anon.post(reverse("login"), {"login": "root", "password": "no"}))
    seen.add("login", anon.post(reverse("login"), {"login": "root", "password": ROOT_PASSWORD}))
    seen.add("logout", anon.post(reverse("logout")))


def _sync_and_allow_toolkits(seen: Seen, admin: Client) -> None:
    """Catalog sync and the allow-list, from the admin, then the sync command."""
    seen.add("toolkit sync", admin.post(reverse("admin:sessions_app_toolkit_sync"), follow=True))
    toolkits = list(Toolkit.objects.filter(slug__in=ALLOWED).values_list("pk", flat=True))
    seen.add(
        "toolkit allow",
        admin.post(
            reverse("admin:sessions_app_toolkit_changelist"),
            {"action": "allow_toolkits", "_selected_action": toolkits, "index": "0"},
            follow=True,
        ),
    )
    _command(seen, "sync_toolkits")


def _change_sessions(seen: Seen, admin: Client, users: list[EndUser]) -> str:
    """Create, refresh, change toolkits, delete: admin actions, support refresh, commands. The
    support refresh URL of the first user."""
    _both_steps(seen, "create", admin, "create_sessions", users[:2], ["github", "gmail"])
    _both_steps(seen, "refresh", admin, "refresh_sessions", users[:1], ["slack"])
    _both_steps(
        seen, "change toolkits", admin, "change_session_toolkits", users[1:2], ["github", "notion"]
    )
    _command(seen, "create_session", "usr_2", "--toolkits", "github")
    _command(seen, "refresh_session", "usr_2")
    card_url = reverse("sessions_app:support_session_refresh", args=[users[0].public_id])
    seen.add("support refresh confirm", admin.get(card_url))
    seen.add("support refresh", admin.post(card_url, follow=True))
    seen.add("support refresh htmx", admin.post(card_url, HTTP_HX_REQUEST="true"))
    _command(seen, "create_session", "usr_3", "--toolkits", "slack")
    _both_steps(seen, "delete", admin, "delete_sessions", users[3:4], None)
    _command(seen, "create_session", "usr_3", "--toolkits", "slack")
    _command(seen, "delete_session", "usr_3")
    return card_url


def _bulk_job(seen: Seen, admin: Client, users: list[EndUser]) -> None:
    """More users than the synchronous limit go to a background job (when it exists)."""
    if importlib.util.find_spec("sessions_app.bulk.jobs") is None:
        return
    _both_steps(seen, "bulk create", admin, "create_sessions", users[3:], ["github"])
    with contextlib.suppress(NoReverseMatch):
        seen.add("bulk job list", admin.get(reverse("bulk:job_list")))


def _composio_errors(
    seen: Seen, emu: Emulator, admin: Client, users: list[EndUser], card_url: str
) -> None:
    """Errors Composio can give, through the same pages; then reconcile what they left open."""
    emu.faults.enqueue(500, endpoint="session.create")
    seen.add("create fails 500", _changelist(admin, "refresh_sessions", users[:1], ["github"])[1])
    emu.faults.enqueue(401, endpoint="session.create")
    seen.add("create refused 401", _changelist(admin, "refresh_sessions", users[:1], ["gmail"])[1])
    emu.faults.enqueue(429, endpoint="session.create", retry_after=9)
    seen.add("refresh rate limited", admin.post(card_url, follow=True))
    emu.faults.truncated(endpoint="session.create")
    seen.add("refresh cut", admin.post(card_url, follow=True))
    seen.add("crafted toolkit", _changelist(admin, "refresh_sessions", users[:1], ["jira"])[1])
    _command(seen, "create_session", "usr_0", "--toolkits", "nosuchkit")
    _command(seen, "reconcile_sessions", "--grace-seconds=0", "--settle-seconds=0")


def _support_pages(seen: Seen, emu: Emulator, sup: Client, aud: Client) -> None:
    """Lookup, card, row, reveal, connections (also with Composio failing) of every active
    session; a reveal by an auditor."""
    active = ToolRouterSession.objects.filter(status="active").select_related("end_user")
    seen.add("lookup", sup.get(reverse("sessions_app:support_lookup"), {"q": "usr"}))
    seen.add(
        "lookup htmx",
        sup.get(reverse("sessions_app:support_lookup"), {"q": "usr_1"}, HTTP_HX_REQUEST="true"),
    )
    for session in active:
        public_id = session.end_user.public_id
        card = reverse("sessions_app:support_user_card", args=[public_id])
        seen.add("card", sup.get(card))
        seen.add("card htmx", sup.get(card, HTTP_HX_REQUEST="true"))
        row = reverse("sessions_app:support_user_row", args=[public_id])
        seen.add("row", sup.get(row, HTTP_HX_REQUEST="true"))
        reveal = reverse("sessions_app:support_mcp_reveal", args=[session.public_id])
        seen.add("reveal", sup.post(reveal))
        seen.add("reveal htmx", sup.post(reveal, HTTP_HX_REQUEST="true"))
        connections = reverse("sessions_app:support_session_connections", args=[session.public_id])
        seen.add("connections", sup.get(connections))
        emu.faults.enqueue(503, endpoint="session.get", times=3)
        seen.add("connections 503", sup.get(connections, HTTP_HX_REQUEST="true"))
    seen.add("reveal by auditor", aud.post(reveal))


def _audit_pages(seen: Seen, aud: Client) -> None:
    """The audit trail, its exports and the access report."""
    for name, params in [
        ("audit:events", {}),
        ("audit:events", {"export": "csv"}),
        ("audit:events", {"action": "mcp_url.reveal"}),
        ("audit:access", {}),
        ("audit:access", {"export": "toolkits"}),
        ("audit:access_users", {}),
        ("audit:access_users", {"export": "csv"}),
    ]:
        seen.add(f"{name} {params}", aud.get(reverse(name), params))
    toolkit_page = reverse("audit:access_toolkit", args=["github"])
    seen.add("access toolkit", aud.get(toolkit_page))
    seen.add("access toolkit csv", aud.get(toolkit_page, {"export": "csv"}))


def _every_admin_page(seen: Seen, root: User, root_c: Client) -> None:
    """Every admin page a superuser can open: index, each changelist, add and change pages."""
    from django.contrib import admin as django_admin

    seen.add("admin index", root_c.get(reverse("admin:index")))
    for model, model_admin in django_admin.site._registry.items():
        opts = model._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"
        seen.add(f"{base} changelist", root_c.get(reverse(f"{base}_changelist")))
        if model_admin.has_add_permission(_request_as(root)):
            seen.add(f"{base} add", root_c.get(reverse(f"{base}_add")))
        for obj in model._default_manager.all()[:3]:
            seen.add(f"{base} change", root_c.get(reverse(f"{base}_change", args=[obj.pk])))
            seen.add(f"{base} history", root_c.get(reverse(f"{base}_history", args=[obj.pk])))


def _error_pages(seen: Seen, outsider: Client, sup: Client) -> None:
    """403 (no role, and CSRF), 404, and /healthz (which pings Composio)."""
    seen.add("403", outsider.get(reverse("sessions_app:support_lookup")))
    strict = client_for(User.objects.get(username="sam_support"), enforce_csrf_checks=True)
    seen.add(
        "403 csrf", strict.post(reverse("sessions_app:support_mcp_reveal", args=[uuid.uuid4()]))
    )
    seen.add("404", sup.get(reverse("sessions_app:support_user_card", args=[uuid.uuid4()])))
    seen.add("404 path", sup.get("/no/such/page/"))
    seen.add("healthz", Client().get(reverse("healthz")))


def _run_every_flow(emu: Emulator, django_user_model) -> Seen:  # noqa: ANN001
    seen = Seen()
    root, clients = _logged_in_staff(django_user_model)
    admin, sup, aud = clients["ada_admin"], clients["sam_support"], clients["aud_auditor"]
    _log_in_and_out(seen)
    _sync_and_allow_toolkits(seen, admin)
    users = [EndUser.objects.create(external_id=f"usr_{n}", display_name=f"U{n}") for n in range(6)]
    card_url = _change_sessions(seen, admin, users)
    _bulk_job(seen, admin, users)
    _composio_errors(seen, emu, admin, users, card_url)
    _support_pages(seen, emu, sup, aud)
    _audit_pages(seen, aud)
    _every_admin_page(seen, root, clients["root"])
    _command(seen, "verify_audit")
    _error_pages(seen, clients["olly_outsider"], sup)
    return seen


def _request_as(user: User) -> HttpRequest:
    request = HttpRequest()
    request.user = user
    return request


def _tables() -> Iterator[tuple[str, str]]:
    """(table, the text of every row) for every table in the database; session data decoded."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = cursor.fetchall()
            text = "\n".join(repr(row) for row in rows)
            if table == "django_session":
                text += "\n".join(repr(SessionStore().decode(row[1])) for row in rows)
            yield table, text


def _assert_the_run_was_real(seen: Seen, emu: Emulator, urls: set[str]) -> None:
    """The run really used the sentinel key, its pages answered as they should, and it really
    showed MCP URLs (`urls`, every one the run made) where it should."""
    assert emu.requests and all(r.authenticated for r in emu.requests)
    assert len(urls) >= 5
    statuses = {label: r.status_code for label, r, _ in seen.responses}
    expected_errors = {"403", "403 csrf", "404", "404 path", "reveal by auditor", "login", "logout"}
    assert {
        label: code
        for label, code in statuses.items()
        if label not in expected_errors and code != HTTPStatus.OK
    } == {}
    assert ToolRouterSession.objects.filter(status="active").count() >= 5
    assert statuses["reveal"] == HTTPStatus.OK and statuses["403"] == HTTPStatus.FORBIDDEN
    assert statuses["404"] == HTTPStatus.NOT_FOUND and statuses["healthz"] == HTTPStatus.OK
    assert statuses["403 csrf"] == HTTPStatus.FORBIDDEN
    revealed = [body for label, _, body in seen.responses if label.startswith("reveal")]
    assert any(any(u.encode() in body for u in urls) for body in revealed)
    assert len(seen.responses) > 60


def test_every_flow_with_a_sentinel_key_leaves_it_nowhere_and_the_mcp_url_only_in_reveals(
    sentinel_composio: Emulator,
    every_logger_at_debug: pytest.LogCaptureFixture,
    django_user_model,  # noqa: ANN001
    session_admin: User,
    support_user: User,
    auditor: User,
    outsider: User,
) -> None:
    seen = _run_every_flow(sentinel_composio, django_user_model)
    urls = set(ToolRouterSession.objects.values_list("mcp_url", flat=True)) | {
        s["mcp"]["url"] for s in sentinel_composio.sessions.values()
    }
    _assert_the_run_was_real(seen, sentinel_composio, urls)
    assert len(every_logger_at_debug.records) > 20

    # Responses: bodies, headers and (decoded) cookies.
    for label, response, body in seen.responses:
        assert SENTINEL.encode() not in body, label
        assert SENTINEL not in _header_text(response), label
        if not label.startswith("reveal"):
            leaked = [u for u in urls if u.encode() in body]
            assert not leaked, f"{label} shows a full MCP URL"
    for name, output in seen.outputs:
        assert SENTINEL not in output, name
        assert not [u for u in urls if u in output], name

    # Every table of every installed app (the MCP URL only where sessions are stored).
    for table, text in _tables():
        assert SENTINEL not in text, table
        if table != ToolRouterSession._meta.db_table:
            assert not [u for u in urls if u in text], f"{table} holds a full MCP URL"

    # Every captured log line, at DEBUG, of every logger.
    url_in_logs = set()
    for record in every_logger_at_debug.records:
        line = record.getMessage() + (record.exc_text or "") + repr(record.__dict__)
        assert SENTINEL not in line, f"{record.name}: {record.getMessage()[:200]}"
        if [u for u in urls if u in line]:
            url_in_logs.add((record.name, record.levelname, record.getMessage()[:120]))
    assert url_in_logs == set()

    # The audit trail, explicitly (it is in the tables above too).
    for event in AuditEvent.objects.all():
        text = repr([event.reason, event.details, event.toolkit_slugs, event.session_ref])
        assert SENTINEL not in text and not [u for u in urls if u in text], event.action
    assert AuditEvent.objects.filter(action="mcp_url.reveal", outcome="success").exists()
