"""Production settings, security headers, login protection and staff session timeouts."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import subprocess
import sys
import time
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sessions_app.models import AuditEvent
from sessions_app.request_context import client_ip
from tests.factories import PROJECT_ROOT


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COMPOSIO_"))
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DJANGO_SECURE": "true",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "console.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://console.example.com",
    "AUDIT_HMAC_KEY": secrets.token_urlsafe(48),
}


def test_check_deploy_passes_with_production_settings() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_fails_on_an_insecure_setting() -> None:
    # Wired, not silenced: without the production switch the deploy check must complain.
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W004" in result.stderr or "security.W004" in result.stdout  # no HSTS


def test_production_refuses_to_start_with_a_weak_secret_key() -> None:
    result = _manage("check", **{**PRODUCTION, "DJANGO_SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_pages_carry_a_strict_csp_and_the_other_security_headers(client: Client) -> None:
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_no_template_has_an_inline_script_style_or_event_handler() -> None:
    """The CSP allows scripts and styles from the console's own files only (style-src 'self'):
    an inline one would be blocked in the browser and leave the page broken."""
    offenders = []
    for path in (PROJECT_ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<script\b[^>]*>", text):
            if "src=" not in match.group(0):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}: {match.group(0)}")
        if re.search(r"<style\b", text):
            offenders.append(f"{path.relative_to(PROJECT_ROOT)}: inline <style>")
        if re.search(r"\sstyle\s*=\s*[\"']", text):
            offenders.append(f"{path.relative_to(PROJECT_ROOT)}: inline style attribute")
        if re.search(r"\son[a-z]+\s*=\s*[\"']", text):
            offenders.append(f"{path.relative_to(PROJECT_ROOT)}: inline event handler")
    assert offenders == []


def _login(client: Client, username: str, password: str, ip: str):
    return client.post(
        "/accounts/login/", {"login": username, "password": password}, REMOTE_ADDR=ip
    )


@pytest.mark.django_db
def test_repeated_failures_lock_the_username_and_ip_pair_only(settings) -> None:
    User.objects.create_user("carol", password="right-password-1", is_staff=True)
    attacker = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(attacker, "carol", "wrong", "203.0.113.9")

    locked = _login(attacker, "carol", "right-password-1", "203.0.113.9")
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in attacker.session

    # Carol at her own desk is not locked out by someone else's failures.
    colleague = Client()
    ok = _login(colleague, "carol", "right-password-1", "198.51.100.7")
    assert ok.status_code == HTTPStatus.FOUND
    assert colleague.session["_auth_user_id"] == str(User.objects.get(username="carol").pk)

    failures = AuditEvent.objects.filter(action="auth.login_failed")
    assert failures.count() >= settings.AXES_FAILURE_LIMIT
    assert set(failures.values_list("ip_address", flat=True)) == {"203.0.113.9"}


def test_client_ip_trusts_only_the_configured_proxies(rf, settings) -> None:
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.10")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "192.0.2.10"  # the spoofable left part is ignored
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(request) is None
    # The lock-out and the audit trail see an IPv4-mapped address as the IPv4 address.
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(rf.get("/", REMOTE_ADDR="::ffff:192.0.2.7")) == "192.0.2.7"


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["idle", "absolute"])
def test_staff_sessions_end_after_idle_and_absolute_timeouts(
    client: Client, support_user: User, which: str
) -> None:
    client.force_login(support_user)
    assert client.get("/support/").status_code == HTTPStatus.OK

    session = client.session
    if which == "idle":
        session["_auth_seen"] = time.time() - 31 * 60
    else:
        session["_auth_started"] = time.time() - 13 * 3600
        session["_auth_seen"] = time.time()
    session.save()

    response = client.get("/support/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_deactivated_staff_user_is_logged_out_at_the_next_request(
    client: Client, support_user: User
) -> None:
    client.force_login(support_user)
    assert client.get("/support/").status_code == HTTPStatus.OK
    User.objects.filter(pk=support_user.pk).update(is_active=False)

    response = client.get("/support/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_audit_events_record_the_proxy_aware_client_ip(rf, settings) -> None:
    from sessions_app import trail

    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    settings.TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.10")
    assert trail.record(action="x", outcome="success", request=request).ip_address == "192.0.2.10"
