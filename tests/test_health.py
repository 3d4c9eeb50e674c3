from __future__ import annotations

from http import HTTPStatus

import pytest

from sessions_app.composio.emulator import Emulator
from sessions_app.tool_router import health


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    health._composio_cache.clear()


@pytest.mark.django_db
def test_healthz_answers_anonymous_probes_in_emulated_mode(client, emulator: Emulator) -> None:
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "composio": "emulated",
        "stale_sessions": 0,
    }
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_checks_composio_when_a_key_is_configured(client, emulator: Emulator, settings):
    settings.COMPOSIO_API_KEY = settings.COMPOSIO_EMULATOR_API_KEY
    settings.COMPOSIO_BASE_URL = emulator.base_url

    assert client.get("/healthz").json()["composio"] == "ok"
    client.get("/healthz")
    assert emulator.count("toolkits.list") == 1  # cached between probes

    health._composio_cache.clear()
    emulator.faults.enqueue(500, endpoint="toolkits.list")
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["composio"] == "unreachable"
    assert settings.COMPOSIO_API_KEY not in response.content.decode()
