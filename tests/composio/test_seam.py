"""The seam drives the real SDK over loopback HTTP against the emulator."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from sessions_app.composio import seam
from sessions_app.composio.emulator import Emulator
from sessions_app.tool_router import toolkit_catalog


def test_it_creates_a_session_with_exactly_the_toolkits_given(emulator: Emulator) -> None:
    session = seam.create_session(user_id="u_1", toolkits=["github", "gmail"])

    assert session.session_id.startswith("trs_")
    assert session.toolkits == ("github", "gmail")
    assert session.config_version == 1
    assert session.mcp_url.startswith(emulator.base_url + "/")
    assert session.mcp_type == "http"
    (create,) = [r for r in emulator.requests if r.endpoint == "session.create"]
    assert create.json["user_id"] == "u_1"
    assert create.json["toolkits"] == {"enable": ["github", "gmail"]}
    assert emulator.sessions[session.session_id]["config"]["toolkits"]["enabled"] == [
        "github",
        "gmail",
    ]


@pytest.mark.parametrize("toolkits", [[], None, "github", [""]])
def test_it_refuses_an_empty_or_missing_toolkit_list_without_calling_composio(
    emulator: Emulator, toolkits: object
) -> None:
    with pytest.raises(ValueError):
        seam.create_session(user_id="u_1", toolkits=toolkits)  # type: ignore[arg-type]
    assert emulator.count("session.create") == 0


def test_it_fetches_updates_and_deletes_a_session(emulator: Emulator) -> None:
    created = seam.create_session(user_id="u_1", toolkits=["github"])

    fetched = seam.get_session(created.session_id)
    assert fetched.session_id == created.session_id and fetched.mcp_url == created.mcp_url

    updated = seam.update_session_toolkits(
        session_id=created.session_id, toolkits=["slack", "notion"], expected_config_version=1
    )
    assert updated.toolkits == ("slack", "notion")
    assert updated.config_version == 2
    assert updated.mcp_url == created.mcp_url
    (patch,) = [r for r in emulator.requests if r.endpoint == "session.update"]
    assert patch.json["expected_config_version"] == 1
    assert patch.json["toolkits"] == {"enable": ["slack", "notion"]}

    seam.delete_session(created.session_id)
    with pytest.raises(seam.ComposioNotFound):
        seam.get_session(created.session_id)
    with pytest.raises(seam.ComposioNotFound):
        seam.delete_session(created.session_id)


def test_the_seam_sends_exactly_these_bodies_and_nothing_the_sdk_adds(emulator: Emulator) -> None:
    # The wire contract, whole: an SDK upgrade that starts sending a field of its own (hooks,
    # since composio 0.30.0, are opt-in and must stay unsent) fails here, not at Composio.
    created = seam.create_session(user_id="u_1", toolkits=["github"])
    sid = created.session_id
    seam.update_session_toolkits(session_id=sid, toolkits=["slack"], expected_config_version=1)
    seam.update_session_toolkits(session_id=sid, toolkits=["gmail"], expected_config_version=None)
    seam.session_connections(sid)
    seam.delete_session(sid)

    assert [(r.method, r.endpoint, r.json) for r in emulator.requests] == [
        (
            "POST",
            "session.create",
            {
                "user_id": "u_1",
                "toolkits": {"enable": ["github"]},
                "manage_connections": {"enable": True},
            },
        ),
        ("GET", "session.get", None),
        (
            "PATCH",
            "session.update",
            {"toolkits": {"enable": ["slack"]}, "expected_config_version": 1},
        ),
        ("GET", "session.get", None),
        ("PATCH", "session.update", {"toolkits": {"enable": ["gmail"]}}),
        ("GET", "session.get", None),
        ("GET", "session.toolkits", None),
        ("DELETE", "session.delete", None),
    ]


def test_a_stale_config_version_is_a_conflict_and_is_not_retried(emulator: Emulator) -> None:
    created = seam.create_session(user_id="u_1", toolkits=["github"])
    seam.update_session_toolkits(
        session_id=created.session_id, toolkits=["slack"], expected_config_version=1
    )
    with pytest.raises(seam.ComposioConflict) as excinfo:
        seam.update_session_toolkits(
            session_id=created.session_id, toolkits=["gmail"], expected_config_version=1
        )
    assert "someone else changed" in str(excinfo.value).lower()
    assert emulator.count("session.update") == 2
    assert emulator.sessions[created.session_id]["config"]["toolkits"]["enabled"] == ["slack"]


def test_it_reads_the_whole_catalog_across_pages(emulator: Emulator) -> None:
    catalog = seam.list_catalog(page_size=50)

    assert len(catalog) == 198
    assert len({t.slug for t in catalog}) == 198
    assert emulator.count("toolkits.list") == 4
    github = next(t for t in catalog if t.slug == "github")
    assert github.name and "OAUTH2" in github.auth_schemes


def test_it_reports_each_toolkits_connection_state(emulator: Emulator) -> None:
    created = seam.create_session(user_id="u_1", toolkits=["github", "gmail", "slack"])
    emulator.set_connection(created.session_id, "github", "ACTIVE")
    emulator.set_connection(created.session_id, "gmail", "EXPIRED")

    states = {c.slug: c.state for c in seam.session_connections(created.session_id, page_size=2)}

    assert states == {"github": "active", "gmail": "expired", "slack": "not_connected"}
    assert emulator.count("session.toolkits") == 2


def test_an_unknown_session_is_not_found(emulator: Emulator) -> None:
    with pytest.raises(seam.ComposioNotFound) as excinfo:
        seam.get_session("trs_missing")
    assert excinfo.value.status == 404 and excinfo.value.slug


def test_a_wrong_api_key_is_rejected_with_a_clear_message(emulator: Emulator, settings) -> None:
    settings.COMPOSIO_EMULATOR_API_KEY = "not-the-key"
    with pytest.raises(seam.ComposioRejected) as excinfo:
        seam.create_session(user_id="u_1", toolkits=["github"])
    assert excinfo.value.status == 401
    assert "API key" in str(excinfo.value)
    assert "not-the-key" not in str(excinfo.value)


def test_an_unknown_toolkit_is_rejected_with_composios_reason(emulator: Emulator) -> None:
    with pytest.raises(seam.ComposioRejected) as excinfo:
        seam.create_session(user_id="u_1", toolkits=["no_such_toolkit"])
    assert excinfo.value.status == 400
    assert "no_such_toolkit" in str(excinfo.value)
    assert excinfo.value.outcome_unknown is False
    assert emulator.sessions == {}


def test_a_429_says_when_to_retry_and_is_not_retried(emulator: Emulator) -> None:
    emulator.faults.enqueue(429, endpoint="session.create", retry_after=17)
    started = time.monotonic()
    with pytest.raises(seam.ComposioRateLimited) as excinfo:
        seam.create_session(user_id="u_1", toolkits=["github"])
    assert excinfo.value.retry_after == 17
    assert "retry in 17 s" in str(excinfo.value)
    assert time.monotonic() - started < 5  # never sleeps on Retry-After in a request
    assert emulator.count("session.create") == 1


@pytest.mark.parametrize(
    ("status", "unknown"), [(500, True), (502, True), (504, True), (503, False)]
)
def test_a_5xx_on_create_is_sent_once_and_says_whether_composio_may_have_acted(
    emulator: Emulator, status: int, unknown: bool
) -> None:
    emulator.faults.enqueue(status, endpoint="session.create", times=5)
    with pytest.raises(seam.ComposioUnavailable) as excinfo:
        seam.create_session(user_id="u_1", toolkits=["github"])
    assert excinfo.value.outcome_unknown is unknown
    assert f"HTTP {status}" in str(excinfo.value)
    assert emulator.count("session.create") == 1


def test_a_503_on_a_read_is_retried_then_succeeds(emulator: Emulator, settings) -> None:
    settings.COMPOSIO_SAFE_RETRIES = 2
    created = seam.create_session(user_id="u_1", toolkits=["github"])
    emulator.faults.enqueue(503, endpoint="session.get", times=2)
    assert seam.get_session(created.session_id).session_id == created.session_id
    assert emulator.count("session.get") == 3


def test_a_create_that_timed_out_is_not_sent_again(emulator: Emulator, settings) -> None:
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    emulator.faults.latency(1.0, endpoint="session.create")
    with pytest.raises(seam.ComposioUnavailable) as excinfo:
        seam.create_session(user_id="u_1", toolkits=["github"])
    assert excinfo.value.outcome_unknown is True
    assert "outcome is unknown" in str(excinfo.value)
    time.sleep(1.2)  # long enough for any retry to have arrived
    assert emulator.count("session.create") == 1


def test_a_read_timeout_is_reported_without_an_unknown_outcome(
    emulator: Emulator, settings
) -> None:
    created = seam.create_session(user_id="u_1", toolkits=["github"])
    settings.COMPOSIO_READ_TIMEOUT = 0.3
    emulator.faults.latency(1.0, endpoint="session.get")
    with pytest.raises(seam.ComposioUnavailable) as excinfo:
        seam.get_session(created.session_id)
    assert excinfo.value.outcome_unknown is False


@pytest.mark.parametrize("fault", ["malformed", "truncated", "drop"])
def test_a_broken_answer_to_create_is_an_unknown_outcome(emulator: Emulator, fault: str) -> None:
    getattr(emulator.faults, fault)(endpoint="session.create")
    with pytest.raises(seam.ComposioUnavailable) as excinfo:
        seam.create_session(user_id="u_1", toolkits=["github"])
    assert excinfo.value.outcome_unknown is True
    assert emulator.count("session.create") == 1


def test_a_refused_connection_is_retried_and_reported_as_unreachable(settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.COMPOSIO_API_KEY = ""
    settings.COMPOSIO_EMULATOR_URL = f"http://127.0.0.1:{port}"
    settings.COMPOSIO_SAFE_RETRIES = 1
    seam.reset_client()
    try:
        with pytest.raises(seam.ComposioUnavailable) as excinfo:
            seam.create_session(user_id="u_1", toolkits=["github"])
    finally:
        seam.reset_client()
    assert excinfo.value.outcome_unknown is False
    assert "unreachable" in str(excinfo.value)


SENTINEL = "sk-SENTINEL-7f3a9c1e5b2d4f6a8c0e"


@pytest.mark.django_db
def test_the_api_key_never_appears_in_results_rows_or_logs(settings, caplog) -> None:
    from django.apps import apps
    from django.core import serializers

    from sessions_app.models import EndUser, ToolRouterSession

    caplog.set_level(logging.DEBUG)
    emu = Emulator(api_key=SENTINEL, port=0).start()
    settings.COMPOSIO_API_KEY = SENTINEL
    settings.COMPOSIO_BASE_URL = emu.base_url
    seam.reset_client()
    try:
        results: list[object] = []
        created = seam.create_session(user_id="u_1", toolkits=["github"])
        results += [
            created,
            seam.get_session(created.session_id),
            seam.update_session_toolkits(
                session_id=created.session_id, toolkits=["gmail"], expected_config_version=1
            ),
            seam.session_connections(created.session_id),
            seam.list_catalog(page_size=100)[:3],
        ]
        toolkit_catalog.toolkit_catalog_sync()
        ToolRouterSession.objects.create(
            end_user=EndUser.objects.create(external_id="u_1"),
            session_id=created.session_id,
            mcp_url=created.mcp_url,
            toolkits=list(created.toolkits),
        )
        errors = []
        for fault in ("enqueue", "malformed", "drop"):
            if fault == "enqueue":
                emu.faults.enqueue(500, endpoint="session.create")
            else:
                getattr(emu.faults, fault)(endpoint="session.create")
            with pytest.raises(seam.ComposioError) as excinfo:
                seam.create_session(user_id="u_2", toolkits=["github"])
            errors.append(excinfo.value)
        seam.delete_session(created.session_id)
    finally:
        emu.stop()
        seam.reset_client()

    assert all(r.headers.get("x-api-key") != SENTINEL for r in emu.requests)
    assert emu.count("session.create") == 4  # the key did travel: the emulator accepted it
    for obj in results + errors:
        assert SENTINEL not in repr(obj) and SENTINEL not in str(obj)
        assert not hasattr(obj, "headers")
    for model in apps.get_app_config("sessions_app").get_models():
        dump = serializers.serialize("json", model._base_manager.all())
        assert SENTINEL not in dump, model.__name__
    assert SENTINEL not in caplog.text


class CountingGate:
    """A gate of `limit` places that counts entries and the most held at once."""

    def __init__(self, limit: int) -> None:
        self._places = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.held = self.most = self.entered = 0

    def __enter__(self) -> None:
        self._places.acquire()
        with self._lock:
            self.held += 1
            self.entered += 1
            self.most = max(self.most, self.held)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.held -= 1
        self._places.release()


def test_a_threads_gate_holds_each_request_on_the_wire_and_caps_them(emulator: Emulator) -> None:
    # A bulk runner's threads share a gate of 2: 6 creates at 0.2 s each go 2 at a time.
    emulator.faults.latency(0.2, endpoint="session.create")
    seam.get_client()  # built once, before the threads race to build it
    gate = CountingGate(2)

    def create(n: int) -> None:
        with seam.gated(gate):
            seam.create_session(user_id=f"u_{n}", toolkits=["github"])

    started = time.monotonic()
    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (gate.entered, gate.most, gate.held) == (6, 2, 0)
    assert time.monotonic() - started >= 0.55
    arrivals = sorted(r.at for r in emulator.requests if r.endpoint == "session.create")
    # Never a third request at the emulator while two are being answered.
    assert (
        len(arrivals) == 6
        and min(b - a for a, b in zip(arrivals, arrivals[2:], strict=False)) >= 0.15
    )
    # A thread outside any gate is not held back.
    seam.create_session(user_id="u_free", toolkits=["github"])
    assert gate.entered == 6
