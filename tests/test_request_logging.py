from __future__ import annotations

import ipaddress
import logging
from http import HTTPStatus

import pytest

from sessions_app import trail


@pytest.mark.django_db
def test_each_request_gets_an_id_in_the_header_the_log_and_audit_events(
    client, caplog, settings
) -> None:
    # The test client's peer, 127.0.0.1, as the trusted proxy that set the id.
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.1/32"),)
    caplog.set_level(logging.INFO, logger="console.request")
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-abcdef123456")

    assert response.status_code == HTTPStatus.OK
    assert response["X-Request-ID"] == "lb-abcdef123456"
    (record,) = [r for r in caplog.records if r.name == "console.request"]
    assert record.request_id == "lb-abcdef123456"
    assert "path=/healthz status=200" in record.getMessage()


@pytest.mark.django_db
def test_an_unsafe_incoming_request_id_is_replaced(client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_audit_events_carry_the_request_id(rf) -> None:
    request = rf.get("/")
    request.request_id = "req-1234567890"
    event = trail.record(action="test.action", outcome="success", request=request)
    assert event.request_id == "req-1234567890"
