"""Shared fixtures: named actors (one per role), their logged-in clients, the Composio emulator on
a free port, the synced catalog, task backends, and the world the access suites walk.

The objects are made by the factories in tests/factories.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone

from sessions_app import roles
from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator
from sessions_app.models import (
    AuditEvent,
    EndUser,
    SessionOperation,
    Toolkit,
    ToolRouterSession,
)
from sessions_app.tool_router import (
    accounts,
    config_history,
    connections,
    execution_logs,
    executions,
    mcp_url,
    sessions,
)
from tests.factories import (
    ALLOWED,
    AUDIT_KEY_K1,
    EMULATOR_KEY,
    NO_REVEAL_PERMISSIONS,
    SHIPPED_CATALOG,
    client_for,
    give_session,
    make_authenticator,
    make_axes_records,
    make_end_user,
    make_finished_job,
    make_staff,
    make_staff_with,
    make_task_result,
    store_session,
    sync_catalog,
)

# The browser tests' Chromium and page fixtures (tests/browser.py).
pytest_plugins = ["tests.browser"]

# --- The audit chain's anchor file and key --------------------------------------------------------


@pytest.fixture(autouse=True)
def _private_audit_anchors(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test anchors to a file of its own, never the developer's var/audit-anchors.jsonl."""
    settings.AUDIT_ANCHOR_PATH = str(tmp_path_factory.mktemp("anchors") / "audit-anchors.jsonl")


@pytest.fixture(autouse=True)
def _private_demo_passwords(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`seed_demo` keeps its passwords in a file of the test's own, not var/demo-passwords.json."""
    settings.DEMO_PASSWORDS_PATH = str(tmp_path_factory.mktemp("demo") / "demo-passwords.json")


@pytest.fixture
def keyed(settings: Any) -> Any:
    """Production-like keys: k1 only (tests rotate by changing the setting)."""
    settings.AUDIT_HMAC_KEYS = AUDIT_KEY_K1
    return settings


# --- Actors -------------------------------------------------------------------------------------


@pytest.fixture
def support_user(db: None) -> User:
    """Looks users up and reveals MCP URLs; cannot change sessions or read the audit log."""
    return make_staff("sam_support", roles.SUPPORT)


@pytest.fixture
def session_admin(db: None) -> User:
    """Creates, refreshes, re-scopes and deletes sessions; manages the toolkit allow-list."""
    return make_staff("ada_admin", roles.SESSION_ADMIN)


@pytest.fixture
def auditor(db: None) -> User:
    """Reads the audit trail and access reports; never reveals MCP URLs."""
    return make_staff("aud_auditor", roles.AUDITOR)


@pytest.fixture
def outsider(db: None) -> User:
    """Staff with no role: logged in, allowed nothing."""
    return make_staff("olly_outsider")


# Logging in is audited (auth.login): a test that counts every event logs in where it counts.


@pytest.fixture
def session_admin_client(session_admin: User) -> Client:
    """A client logged in as the session admin (pytest-django's `admin_client` is a superuser)."""
    return client_for(session_admin)


@pytest.fixture
def support_client(support_user: User) -> Client:
    """A client logged in as the support user."""
    return client_for(support_user)


@pytest.fixture
def auditor_client(auditor: User) -> Client:
    """A client logged in as the auditor."""
    return client_for(auditor)


# --- End users ----------------------------------------------------------------------------------


@pytest.fixture
def alice(db: None) -> EndUser:
    """An end user with no session yet."""
    return make_end_user("usr_alice", "Alice", "a@x.io")


@pytest.fixture
def end_users(db: None) -> list[EndUser]:
    """Three end users, usr_1 to usr_3 ("User 1" ...), with no session yet."""
    return [make_end_user(f"usr_{n}", f"User {n}") for n in (1, 2, 3)]


# --- Composio: the emulator ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    emu = Emulator(api_key=EMULATOR_KEY, host="127.0.0.1", port=0).start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator_server: Emulator) -> Iterator[Emulator]:
    """The emulator, empty, fault-free and with the shipped catalog, for tests that speak to it
    themselves (raw HTTP, the SDK): no setting changes, the seam is not pointed at it."""
    emulator_server.reset()
    emulator_server.set_catalog(SHIPPED_CATALOG)
    yield emulator_server
    emulator_server.faults.clear()


@pytest.fixture
def emu_http(emu: Emulator) -> Iterator[httpx.Client]:
    """An HTTP client for the emulator's API, sending its API key."""
    with httpx.Client(base_url=emu.base_url, headers={"x-api-key": EMULATOR_KEY}, timeout=5) as c:
        yield c


@pytest.fixture
def emulator(emu: Emulator, settings) -> Iterator[Emulator]:
    """The emulator, empty and fault-free, with the seam pointed at it (emulated mode)."""
    settings.COMPOSIO_API_KEY = ""
    settings.COMPOSIO_EMULATOR_URL = emu.base_url
    settings.COMPOSIO_EMULATOR_API_KEY = EMULATOR_KEY
    settings.COMPOSIO_READ_TIMEOUT = 5.0
    settings.COMPOSIO_CONNECT_TIMEOUT = 2.0
    composio_seam.reset_client()
    yield emu
    composio_seam.reset_client()


@pytest.fixture
def catalog(emulator: Emulator, db: None) -> Emulator:
    """The emulator with its catalog synced into the database and ALLOWED on the allow-list.

    The request log is cleared after the sync: a test sees only the requests it caused.
    """
    sync_catalog(ALLOWED)
    emulator.reset()
    return emulator


@pytest.fixture
def alices_session(catalog: Emulator, alice: EndUser, session_admin: User) -> ToolRouterSession:
    """Alice's active github session, made by the session admin through the session service, so
    the emulator has it too (its `session.create` stays in the request log)."""
    return give_session(alice, ["github"], session_admin)


@pytest.fixture
def remote_session(emulator: Emulator, db: None) -> ToolRouterSession:
    """A session that exists at the emulator (github, gmail) for end user usr_conn, recorded
    locally as the console would."""
    remote = composio_seam.create_session(user_id="usr_conn", toolkits=["github", "gmail"])
    return store_session(
        make_end_user("usr_conn"),
        remote.session_id,
        mcp_url=remote.mcp_url,
        toolkits=remote.toolkits,
    )


class EmulatorRestarts:
    """Start emulators one after another on one loopback port, the seam pointed at each; with a
    `state` file they keep what they were told (see `emulator/store.py`)."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self.port = 0
        self.running: Emulator | None = None

    def start(self, state: Any = None) -> Emulator:
        """Stop the running emulator (if any) and start a new one on the same port."""
        self.stop()
        emu = Emulator(
            api_key=EMULATOR_KEY, port=self.port, catalog=SHIPPED_CATALOG, state_path=state
        )
        self.running = emu.start()
        self.port = emu.port
        self._settings.COMPOSIO_API_KEY = ""
        self._settings.COMPOSIO_EMULATOR_URL = emu.base_url
        self._settings.COMPOSIO_EMULATOR_API_KEY = EMULATOR_KEY
        self._settings.COMPOSIO_SAFE_RETRIES = 0
        composio_seam.reset_client()  # no pooled connection to the emulator that stopped
        return emu

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture
def emulator_restarts(settings: Any) -> Iterator[EmulatorRestarts]:
    """Emulators started (and restarted) on one port with the seam pointed at them; call
    `.start(state=path)` for one that keeps its state in a file."""
    restarts = EmulatorRestarts(settings)
    yield restarts
    restarts.stop()
    composio_seam.reset_client()


@pytest.fixture
def unreachable_composio(settings) -> Iterator[None]:
    """The seam pointed at a loopback port nobody listens on, with no retries."""
    settings.COMPOSIO_API_KEY = ""
    settings.COMPOSIO_EMULATOR_URL = "http://127.0.0.1:9"
    settings.COMPOSIO_SAFE_RETRIES = 0
    composio_seam.reset_client()
    yield
    composio_seam.reset_client()


# --- Task backends for bulk jobs ----------------------------------------------------------------


@pytest.fixture
def fast_bulk(settings) -> None:
    """Bulk jobs without waiting: no rate limit to speak of, short backoff, two runners, each
    in the test's own thread (a pool's threads would not see the test's transaction)."""
    settings.BULK_RATE_PER_MINUTE = 600_000
    settings.BULK_RETRY_BACKOFF_SECONDS = 0.01
    settings.BULK_CONCURRENCY = 2
    settings.BULK_THREADS = 1


@pytest.fixture
def immediate(settings) -> None:
    """The immediate task backend: a started job runs to its end before the call returns."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def queued(settings) -> None:
    """The database task backend with no worker running: jobs wait in the queue."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


# --- The world the access suites walk -----------------------------------------------------------


@pytest.fixture
def fast_passwords(settings) -> None:
    """The named actors get passwords; hashing them at full strength is most of the set-up."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def access_world(
    emulator: Emulator,
    support_user: User,
    session_admin: User,
    auditor: User,
    outsider: User,
    settings: Any,
) -> dict[str, Any]:
    """One user per role and a real object behind every URL parameter of the access matrix.

    The session's connections were checked when the world was made, and the check is kept for
    an hour: a GET of them answers from the shared cache, as a GET seconds after another does,
    and writes nothing. (A GET on a cold cache pays its requests from the Composio budget, a
    row write: tests/tool_router/test_connection_cache.py.)"""
    root = User.objects.create_superuser("root_super", email="root@example.com", password=None)
    sync_catalog(ALLOWED, actor=root)
    end_user = make_end_user("usr_access", "Access Tester")
    session = give_session(end_user, ["github"], root)
    settings.CONNECTION_STATUS_CACHE_SECONDS = 3600
    account_id = emulator.set_connection(session.session_id, "github", "ACTIVE")
    connections.tool_router_session_connections(session=session, actor=root)
    accounts.accounts_panel(session=session, actor=root)  # the user's accounts, cached too
    settings.CONFIG_HISTORY_CACHE_SECONDS = 3600
    config_history.session_config_history(session, request=None)  # its admin page's history
    # A tool run, so the execution log has an entry to open, and the executions panel's first
    # page in the shared cache, as the connections above: a GET of it writes nothing.
    emulator.set_connection(session.session_id, "github", "ACTIVE")
    tool_run = executions.tool_router_session_execute(
        session=session, tool_slug="GITHUB_GET_THE_AUTHENTICATED_USER"
    )
    settings.SUPPORT_EXECUTIONS_CACHE_SECONDS = 3600
    execution_logs.recent_executions(end_user=end_user, filters=execution_logs.ExecutionFilters())
    now = timezone.now()
    job = make_finished_job(end_user, session, root, now)
    ids = {
        "group": Group.objects.get(name=roles.SUPPORT).pk,
        "user": outsider.pk,
        **make_axes_records(now),
        "authenticator": make_authenticator(outsider),
        "dbtaskresult": make_task_result(now),
        "enduser": end_user.pk,
        "end_user_uuid": end_user.public_id,
        "enduser_ct": ContentType.objects.get_for_model(EndUser).pk,
        "toolkit": Toolkit.objects.get(slug="github").pk,
        "toolkit_slug": "github",
        "account_fp": mcp_url.fingerprint(account_id),
        "sessionoperation": SessionOperation.objects.filter(end_user=end_user).latest("id").pk,
        "auditevent": AuditEvent.objects.latest("sequence").pk,
        "bulkjob": job.pk,
        "job_uuid": job.public_id,
        "execution_log": tool_run.log_id,
    }
    return {
        "users": {
            "anonymous": None,
            "support": support_user,
            "session admin": session_admin,
            "auditor": auditor,
            "no role": outsider,
            "superuser": root,
        },
        "end_user": end_user,
        "ids": ids,
    }


@pytest.fixture
def root_client(access_world: dict[str, Any]) -> Client:
    """A client logged in as the access world's superuser."""
    return client_for(access_world["users"]["superuser"])


@pytest.fixture
def refreshed_world(access_world: dict[str, Any]) -> dict[str, Any]:
    """The access world with its end user's session refreshed once by the superuser, so pages,
    lists and exports name two sessions (`old`, superseded today, and `new`, active), and a staff
    user who holds every role's permission but revealing MCP URLs (`no reveal`)."""
    end_user = access_world["end_user"]
    old = end_user.sessions.get(status="active")
    result = sessions.tool_router_session_refresh(
        end_user=end_user, toolkits=["github"], actor=access_world["users"]["superuser"]
    )
    assert result.ok and result.session is not None, result.message
    old.refresh_from_db()
    no_reveal = make_staff_with("nora_noreveal", NO_REVEAL_PERMISSIONS)
    return {
        **access_world,
        "users": {**access_world["users"], "no reveal": no_reveal},
        "old": old,
        "new": result.session,
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that is not a browser test must not reach pytest-playwright's `page` fixture (a
    parameter named `page` does): it would launch a browser and, worse, be reordered among the
    transactional tests, whose flush then leaves later tests without the roles."""
    misplaced = [
        item.nodeid
        for item in items
        if "page" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("browser") is None
    ]
    if misplaced:
        raise pytest.UsageError(
            "Only browser tests may use `page` (rename the parameter): " + ", ".join(misplaced)
        )
