"""Response headers: a Permissions-Policy everywhere, and gunicorn (started for real, with the
production gunicorn.conf.py) sends no `Server` banner, binds loopback and trusts the same proxies.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path

import pytest
from django.test import Client

from sessions_app.middleware import PERMISSIONS_POLICY
from tests.factories import PROJECT_ROOT

DENIED = ("camera", "microphone", "geolocation", "payment", "usb")


def _environment(**env: str) -> dict[str, str]:
    """This process's environment without the console's own variables, plus `env`."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "GUNICORN_", "COMPOSIO_", "FORWARDED_ALLOW_IPS"))
    }
    return {**keep, **env}


def _policy(header: str) -> dict[str, str]:
    return dict(part.strip().split("=", 1) for part in header.split(","))


def test_the_permissions_policy_denies_every_listed_feature() -> None:
    assert {feature: _policy(PERMISSIONS_POLICY)[feature] for feature in DENIED} == dict.fromkeys(
        DENIED, "()"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/healthz", "/static/console.css", "/nope/"])
def test_every_response_carries_the_permissions_policy(client: Client, path: str) -> None:
    response = client.get(path)
    assert response["Permissions-Policy"] == PERMISSIONS_POLICY


@pytest.mark.django_db
def test_the_https_redirect_carries_the_permissions_policy(client: Client, settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/")
    assert response.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert response["Permissions-Policy"] == PERMISSIONS_POLICY


def _gunicorn_config(**env: str) -> dict[str, object]:
    """gunicorn.conf.py as gunicorn's own Config reads it (validated), in a fresh interpreter."""
    script = (
        "import json, runpy\n"
        "from gunicorn.config import Config\n"
        "cfg = Config()\n"
        "for name, value in runpy.run_path('gunicorn.conf.py').items():\n"
        "    if name in cfg.settings:\n"
        "        cfg.set(name, value)\n"
        "print(json.dumps({'bind': cfg.bind, 'forwarded_allow_ips': cfg.forwarded_allow_ips,\n"
        "                  'secure_scheme_headers': cfg.secure_scheme_headers}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_gunicorn_binds_loopback_and_trusts_no_proxy_by_default() -> None:
    assert _gunicorn_config() == {
        "bind": ["127.0.0.1:8000"],
        "forwarded_allow_ips": [],
        "secure_scheme_headers": {"X-FORWARDED-PROTO": "https"},
    }


def test_gunicorn_follows_gunicorn_bind_and_the_trusted_proxies() -> None:
    config = _gunicorn_config(
        GUNICORN_BIND="0.0.0.0:9000", DJANGO_TRUSTED_PROXIES="10.0.0.0/24,127.0.0.1/32"
    )
    assert config["bind"] == ["0.0.0.0:9000"]
    assert config["forwarded_allow_ips"] == ["10.0.0.0/24", "127.0.0.1/32"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _gunicorn(tmp_path: Path, **env: str) -> Iterator[int]:
    """gunicorn with gunicorn.conf.py (one worker) on a free loopback port, stopped at the end."""
    port = _free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    with log.open("w") as sink:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "console.wsgi", "-c", "gunicorn.conf.py"],
            cwd=PROJECT_ROOT,
            env=_environment(
                GUNICORN_BIND=f"127.0.0.1:{port}",
                GUNICORN_WORKERS="1",
                GUNICORN_THREADS="1",
                DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                DJANGO_ALLOWED_HOSTS="127.0.0.1",
                **env,
            ),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _raw_head(port: int, *headers: str) -> tuple[str, dict[str, str]]:
    """The status line and the headers (lower-cased names) of GET /accounts/login/, raw."""
    request = "\r\n".join(
        ["GET /accounts/login/ HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        + list(headers)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"{request}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    status, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return status, {
        line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip() for line in lines
    }


def test_gunicorn_keeps_an_idle_connection_open_past_its_own_two_second_default(
    tmp_path: Path,
) -> None:
    """A person (or a proxy) reuses a connection after a pause: the second request on it, 3 s
    after the first (gunicorn's default keep-alive is 2 s), is answered, not met by a close."""

    with _gunicorn(tmp_path) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()  # 503 here: no database to check, which does not matter
        sock = connection.sock
        time.sleep(3)
        # Closed at 2 s by default: http.client then raises RemoteDisconnected here.
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        second.read()
        assert connection.sock is sock  # the same connection, not a new one
        assert second.status == first.status
        connection.close()


def test_gunicorn_answers_without_a_server_banner(tmp_path: Path) -> None:
    with _gunicorn(tmp_path) as port:
        status, headers = _raw_head(port)
    assert status.startswith("HTTP/1.1 200")
    assert "server" not in headers
    assert headers["permissions-policy"] == PERMISSIONS_POLICY


def test_gunicorn_believes_x_forwarded_proto_only_from_the_trusted_proxies(tmp_path: Path) -> None:
    """Production mode redirects plain HTTP: a request gunicorn marks as HTTPS is not redirected."""
    production = {
        "DJANGO_SECURE": "true",
        "DJANGO_SECRET_KEY": "x" + os.urandom(40).hex(),
        "DJANGO_STATIC_MANIFEST": "false",
    }
    with _gunicorn(tmp_path, **production) as port:
        # Nobody is trusted by default: the test's own loopback peer is a stranger.
        status, _ = _raw_head(port, "X-Forwarded-Proto: https")
        assert status.startswith("HTTP/1.1 301")
    with _gunicorn(tmp_path, DJANGO_TRUSTED_PROXIES="127.0.0.1/32", **production) as port:
        status, _ = _raw_head(port, "X-Forwarded-Proto: https")
        assert status.startswith("HTTP/1.1 200")
        # gunicorn's defaults would also take X-Forwarded-Ssl; this configuration does not.
        status, _ = _raw_head(port, "X-Forwarded-Ssl: on")
        assert status.startswith("HTTP/1.1 301")
