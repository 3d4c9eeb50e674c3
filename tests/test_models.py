from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from sessions_app import roles, trail
from sessions_app.models import AuditEvent, AuditLogIsAppendOnly, ToolRouterSession
from tests.factories import PROJECT_ROOT, make_end_user, store_session


@pytest.mark.django_db
def test_a_second_active_session_for_one_user_is_refused_by_the_database() -> None:
    user = make_end_user("u_1")
    store_session(user, "trs_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        store_session(user, "trs_2")
    assert ToolRouterSession.objects.filter(end_user=user).count() == 1


@pytest.mark.django_db
def test_superseded_and_deleted_sessions_do_not_count_against_the_one_active() -> None:
    user = make_end_user("u_1")
    store_session(user, "trs_1", status="superseded")
    store_session(user, "trs_2", status="deleted")
    store_session(user, "trs_3")
    other = make_end_user("u_2")
    store_session(other, "trs_4")
    assert ToolRouterSession.objects.filter(status="active").count() == 2


@pytest.mark.django_db
def test_session_str_never_shows_the_mcp_url() -> None:
    session = store_session(
        make_end_user("u_1"), "trs_1", mcp_url="http://127.0.0.1:9/tool_router/trs_1/mcp"
    )
    assert "mcp" not in str(session) and "127.0.0.1" not in str(session)


@pytest.mark.django_db
def test_audit_events_cannot_be_changed_or_deleted_through_the_orm() -> None:
    event = trail.record(action="test.action", outcome="success", reason="first")
    event.reason = "edited"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(reason="edited")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).reason == "first"


@pytest.mark.django_db
def test_audit_details_refuse_secrets_and_redact_the_api_key(settings) -> None:
    settings.COMPOSIO_API_KEY = "sk-sentinel-audit-1234"
    with pytest.raises(ValueError):
        trail.record(action="x", outcome="success", details={"mcp_url": "http://x"})
    event = trail.record(
        action="x",
        outcome="failure",
        reason="key sk-sentinel-audit-1234 leaked",
        details={"note": ["sk-sentinel-audit-1234"]},
    )
    assert "sk-sentinel" not in event.reason and "sk-sentinel" not in str(event.details)


@pytest.mark.django_db
def test_roles_exist_with_the_permissions_roles_py_lists() -> None:
    for name, perms in roles.ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert granted == set(perms), name
    assert "sessions_app.reveal_mcp_url" not in roles.ROLE_PERMISSIONS[roles.AUDITOR]


def test_check_and_migrate_do_not_import_the_composio_sdk(tmp_path: Path) -> None:
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'console.settings';"
        f"os.environ['DATABASE_URL'] = 'sqlite:///{tmp_path / 'x.sqlite3'}';"
        "from django.core.management import call_command; import django; django.setup();"
        "call_command('check'); call_command('migrate', verbosity=0);"
        "import django.urls; django.urls.resolve('/admin/');"
        "bad = [m for m in sys.modules"
        " if m == 'composio' or m.startswith(('composio.', 'composio_client'))];"
        "print('IMPORTED', bad) if bad else print('CLEAN')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("CLEAN"), out.stdout
