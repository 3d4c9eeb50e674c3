"""Shared fixtures: named actors (one per role) and the Composio emulator on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, User

from sessions_app import roles
from sessions_app.composio import seam as composio_seam
from sessions_app.composio.emulator import Emulator

EMULATOR_KEY = "emu-test-key-0123456789"
_SHIPPED_CATALOG: list[dict] = []


def _staff(username: str, *groups: str) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def support_user(db: None) -> User:
    """Looks users up and reveals MCP URLs; cannot change sessions or read the audit log."""
    return _staff("sam_support", roles.SUPPORT)


@pytest.fixture
def session_admin(db: None) -> User:
    """Creates, refreshes, re-scopes and deletes sessions; manages the toolkit allow-list."""
    return _staff("ada_admin", roles.SESSION_ADMIN)


@pytest.fixture
def auditor(db: None) -> User:
    """Reads the audit trail and access reports; never reveals MCP URLs."""
    return _staff("aud_auditor", roles.AUDITOR)


@pytest.fixture
def outsider(db: None) -> User:
    """Staff with no role: logged in, allowed nothing."""
    return _staff("olly_outsider")


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    emu = Emulator(api_key=EMULATOR_KEY, host="127.0.0.1", port=0).start()
    _SHIPPED_CATALOG[:] = emu.catalog
    yield emu
    emu.stop()


@pytest.fixture
def emulator(emulator_server: Emulator, settings) -> Iterator[Emulator]:
    """The emulator, empty and fault-free, with the seam pointed at it (emulated mode)."""
    emulator_server.reset()
    emulator_server.set_catalog(_SHIPPED_CATALOG)
    settings.COMPOSIO_API_KEY = ""
    settings.COMPOSIO_EMULATOR_URL = emulator_server.base_url
    settings.COMPOSIO_EMULATOR_API_KEY = EMULATOR_KEY
    settings.COMPOSIO_READ_TIMEOUT = 5.0
    settings.COMPOSIO_CONNECT_TIMEOUT = 2.0
    composio_seam.reset_client()
    yield emulator_server
    emulator_server.faults.clear()
    composio_seam.reset_client()
