"""A key is required in production (`sessions_app.chain.checks`): without one no event is written,
malformed keys fail the system check, and `check --deploy` refuses a missing or public dev key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from sessions_app import trail
from sessions_app.chain import hashing
from sessions_app.models import AuditEvent

BASE_DIR = Path(django_settings.BASE_DIR)


def _check_ids(*, deploy: bool) -> list[str]:
    """This app's system check messages, as `check [--deploy]` would report them."""
    found = checks.run_checks(include_deployment_checks=deploy)
    return [f"{m.id}: {m.msg}" for m in found if m.id and m.id.startswith("sessions_app.")]


@pytest.mark.django_db
def test_production_without_a_key_writes_no_event(settings: Any) -> None:
    settings.SECURE, settings.AUDIT_HMAC_KEYS, settings.AUDIT_HMAC_KEY = True, "", ""
    with pytest.raises(ImproperlyConfigured, match="AUDIT_HMAC_KEY"):
        trail.record(action="catalog.sync", outcome="success")
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("k1", "id:secret pairs"),
        ("k1:a,k1:b", "distinct"),
        (f"{hashing.UNKEYED_KEY_ID}:secret", "distinct and not"),
    ],
)
def test_malformed_keys_fail_the_system_check(settings: Any, keys: str, message: str) -> None:
    settings.AUDIT_HMAC_KEYS = keys
    (found,) = _check_ids(deploy=False)
    assert found.startswith("sessions_app.E001") and message in found


def test_a_missing_production_key_is_a_deploy_check(settings: Any) -> None:
    settings.SECURE, settings.AUDIT_HMAC_KEYS, settings.AUDIT_HMAC_KEY = True, "", ""
    assert _check_ids(deploy=False) == []  # migrate may still run
    (found,) = _check_ids(deploy=True)
    assert found.startswith("sessions_app.E002: DJANGO_SECURE is on")


def test_check_deploy_refuses_the_dev_key(settings: Any) -> None:
    settings.AUDIT_HMAC_KEYS = settings.AUDIT_HMAC_KEY = ""
    (found,) = _check_ids(deploy=True)
    assert found.startswith("sessions_app.E002") and "public development key" in found
    settings.AUDIT_HMAC_KEY = hashing.DEV_KEY  # the dev key configured under another id
    assert [m[:17] for m in _check_ids(deploy=True)] == ["sessions_app.E002"]
    settings.AUDIT_HMAC_KEY = "a-production-key"
    assert _check_ids(deploy=True) == []


def _deploy_check(**extra: str) -> subprocess.CompletedProcess[str]:
    """`check --deploy` with the production environment of .ci/run."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AUDIT_"))},
        "DJANGO_SECURE": "true",
        "DJANGO_SECRET_KEY": "x" * 10 + "".join(chr(65 + n % 26) for n in range(50)),
        "DJANGO_ALLOWED_HOSTS": "console.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://console.example.com",
        "AUDIT_HMAC_KEY": "",
        "AUDIT_HMAC_KEYS": "",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_with_production_settings_fails_without_the_audit_key() -> None:
    missing = _deploy_check()
    assert missing.returncode != 0
    assert "sessions_app.E002" in missing.stderr and "set AUDIT_HMAC_KEY" in missing.stderr
    present = _deploy_check(AUDIT_HMAC_KEY="a-production-audit-key-from-the-secret-store")
    assert present.returncode == 0, present.stderr
    assert "no issues" in present.stdout
