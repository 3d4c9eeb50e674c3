"""Forwarding headers are believed from the trusted proxies only (settings.TRUSTED_PROXIES).

A client talking to the console directly cannot choose its address (the login lock-out, the audit
trail), its scheme (request.is_secure) or the request id its audit events are filed under.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse
from django.test import Client

from sessions_app.middleware import UntrustedProxyHeadersMiddleware, axes_client_ip
from sessions_app.models import AuditEvent
from sessions_app.request_context import client_ip, from_trusted_proxy
from tests.factories import PROJECT_ROOT

PROXY = "10.0.0.5"
CLIENT = "203.0.113.9"


@pytest.fixture
def behind_a_proxy(settings) -> None:
    """One trusted proxy network, 10.0.0.0/24, that appends the client's address."""
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    settings.TRUSTED_PROXY_COUNT = 1


def _login(client: Client, password: str, remote: str, forwarded: str) -> HttpResponse:
    return client.post(
        "/accounts/login/",
        {"login": "carol", "password": password},
        REMOTE_ADDR=remote,
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def test_trusted_proxies_are_empty_by_default(settings) -> None:
    assert settings.TRUSTED_PROXIES == ()


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(rf, settings) -> None:
    # The old trust model: a proxy count alone made any client's X-Forwarded-For believed.
    settings.TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", REMOTE_ADDR=CLIENT, HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert not from_trusted_proxy(request)
    assert client_ip(request) == CLIENT
    assert axes_client_ip(request) == CLIENT


def test_from_a_trusted_proxy_the_right_hop_is_used(rf, settings, behind_a_proxy) -> None:
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.10")
    assert from_trusted_proxy(request)
    assert client_ip(request) == "192.0.2.10"
    settings.TRUSTED_PROXY_COUNT = 2  # two proxies, each appending the address it saw
    assert client_ip(request) == "6.6.6.6"
    # An IPv4-mapped peer address is the IPv4 address the list names.
    mapped = rf.get("/", REMOTE_ADDR=f"::ffff:{PROXY}", HTTP_X_FORWARDED_FOR="192.0.2.10")
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(mapped) == "192.0.2.10"
    # Next door to the proxy's network is not the proxy.
    outside = rf.get("/", REMOTE_ADDR="10.0.1.5", HTTP_X_FORWARDED_FOR="192.0.2.10")
    assert client_ip(outside) == "10.0.1.5"


@pytest.mark.django_db
def test_rotating_forwarded_for_does_not_dodge_the_login_lock_out(settings) -> None:
    """The issue's scenario: 8 failed logins from one client, each with a new X-Forwarded-For."""
    settings.TRUSTED_PROXY_COUNT = 1
    User.objects.create_user("carol", password="right-password-1", is_staff=True)
    attacker = Client()
    for n in range(8):
        _login(attacker, "wrong", CLIENT, f"198.51.100.{n + 1}")

    locked = _login(attacker, "right-password-1", CLIENT, "198.51.100.99")
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "_auth_user_id" not in attacker.session
    failures = AuditEvent.objects.filter(action="auth.login_failed")
    assert set(failures.values_list("ip_address", flat=True)) == {CLIENT}


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_client_part_cannot_dodge_the_lock_out(behind_a_proxy) -> None:
    User.objects.create_user("carol", password="right-password-1", is_staff=True)
    attacker = Client()
    for n in range(8):
        # The client writes the left part; the proxy appends the address it really saw.
        _login(attacker, "wrong", PROXY, f"198.51.100.{n + 1}, {CLIENT}")

    locked = _login(attacker, "right-password-1", PROXY, f"198.51.100.99, {CLIENT}")
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    failures = AuditEvent.objects.filter(action="auth.login_failed")
    assert set(failures.values_list("ip_address", flat=True)) == {CLIENT}

    # Someone else behind the same proxy still logs in.
    ok = _login(Client(), "right-password-1", PROXY, "192.0.2.44")
    assert ok.status_code == HTTPStatus.FOUND


@pytest.mark.django_db
def test_a_client_request_id_is_ignored_from_an_untrusted_peer(client: Client) -> None:
    response = client.post(
        "/accounts/login/",
        {"login": "nobody", "password": "x"},
        HTTP_X_REQUEST_ID="forged-request-id-1",
    )
    made = response["X-Request-ID"]
    assert made != "forged-request-id-1" and len(made) == 32
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.request_id == made


@pytest.mark.django_db
def test_a_proxy_request_id_is_stored_from_a_trusted_peer(behind_a_proxy) -> None:
    response = Client().post(
        "/accounts/login/",
        {"login": "nobody", "password": "x"},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=CLIENT,
        HTTP_X_REQUEST_ID="lb-request-id-1",
    )
    assert response["X-Request-ID"] == "lb-request-id-1"
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert (event.request_id, event.ip_address) == ("lb-request-id-1", CLIENT)
    # Even a trusted proxy's id must be short and plain.
    response = Client().get("/healthz", REMOTE_ADDR=PROXY, HTTP_X_REQUEST_ID="bad id\nnewline")
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("meta", "value"), [("HTTP_X_FORWARDED_PROTO", "https"), ("HTTP_X_FORWARDED_SSL", "on")]
)
def test_a_scheme_header_from_an_untrusted_peer_does_not_make_the_request_secure(
    rf, settings, meta: str, value: str
) -> None:
    # Even with Django told to believe the header, only a trusted proxy's copy counts.
    settings.SECURE_PROXY_SSL_HEADER = (meta, value)
    seen: dict[str, bool] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen[request.META["REMOTE_ADDR"]] = request.is_secure()
        return HttpResponse()

    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    middleware = UntrustedProxyHeadersMiddleware(view)
    middleware(rf.get("/", REMOTE_ADDR=CLIENT, **{meta: value}))
    middleware(rf.get("/", REMOTE_ADDR=PROXY, **{meta: value}))
    assert seen == {CLIENT: False, PROXY: True}


@pytest.mark.django_db
def test_the_https_redirect_follows_the_trusted_proxies(settings, behind_a_proxy) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    forged = Client().get("/accounts/login/", REMOTE_ADDR=CLIENT, HTTP_X_FORWARDED_PROTO="https")
    assert forged.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert forged["Location"].startswith("https://")
    proxied = Client().get("/accounts/login/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == HTTPStatus.OK


def test_a_bad_trusted_proxies_value_stops_the_start(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=PROJECT_ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DJANGO_TRUSTED_PROXIES": "10.0.0.0/24, 10.0.0.1/8",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_TRUSTED_PROXIES" in result.stderr


@pytest.mark.parametrize(
    ("count", "tls_header", "expected"),
    [
        (0, None, []),
        (1, None, ["sessions_app.W001"]),
        (0, ("HTTP_X_FORWARDED_PROTO", "https"), ["sessions_app.W002"]),
        (2, ("HTTP_X_FORWARDED_PROTO", "https"), ["sessions_app.W001", "sessions_app.W002"]),
    ],
)
def test_proxy_settings_that_would_do_nothing_are_deploy_warnings(
    settings, count: int, tls_header: tuple[str, str] | None, expected: list[str]
) -> None:
    settings.TRUSTED_PROXIES = ()
    settings.TRUSTED_PROXY_COUNT = count
    settings.SECURE_PROXY_SSL_HEADER = tls_header

    found = [m.id for m in run_checks(include_deployment_checks=True) if m.id.startswith("sess")]

    assert [i for i in found if i in {"sessions_app.W001", "sessions_app.W002"}] == expected


def test_a_listed_proxy_silences_the_proxy_warnings(settings, behind_a_proxy: None) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    found = {m.id for m in run_checks(include_deployment_checks=True)}

    assert not found & {"sessions_app.W001", "sessions_app.W002"}
