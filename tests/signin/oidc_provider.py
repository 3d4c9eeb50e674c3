"""The test suite's OpenID Connect provider: tests/oidc/provider.mjs (npm `oidc-provider`, pinned
in tests/oidc/package-lock.json) started with Node on a free loopback port for one test.

Skipped, with the reason, when Node or tests/oidc/node_modules is missing (`npm ci --prefix
tests/oidc`; .ci/run does it when npm is there)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.factories import PROJECT_ROOT

OIDC_DIR = PROJECT_ROOT / "tests" / "oidc"
NODE = shutil.which("node")
CLIENT_ID = "tool-router-console"
CLIENT_SECRET = "test-client-secret-not-a-real-one"

needs_provider = pytest.mark.skipif(
    NODE is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir(),
    reason="The SSO tests need Node and the pinned oidc-provider: run `npm ci --prefix tests/oidc`",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OIDCProvider:
    def __init__(self, redirect_uri: str) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "REDIRECT_URI": redirect_uri,
        }
        self.process = subprocess.Popen(
            [str(NODE), "provider.mjs"],
            cwd=OIDC_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"the OIDC provider stopped: {output}")
            try:
                self._get("/.well-known/openid-configuration")
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the OIDC provider did not answer within 30 s")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.issuer + path, timeout=2) as response:  # noqa: S310
            return json.load(response)

    def next_sign_in(self, person: dict[str, Any], **state: Any) -> None:
        """Who signs in at the provider next (claims), with `amr`, `acr` and `tamper`."""
        body = json.dumps({"person": person, **state}).encode()
        request = urllib.request.Request(  # noqa: S310
            self.issuer + "/_test/state",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture
def oidc_provider(live_server, settings) -> Iterator[OIDCProvider]:
    """The provider, and the console set up to use it (SSO_* settings, as from the env)."""
    provider = OIDCProvider(f"{live_server.url}/accounts/oidc/sso/login/callback/")
    settings.SSO_ISSUER_URL = provider.issuer
    settings.SSO_CLIENT_ID = CLIENT_ID
    settings.SSO_CLIENT_SECRET = CLIENT_SECRET
    settings.SSO_PROVIDER_NAME = "Test IdP"
    settings.SSO_SCOPES = ["openid", "profile", "email", "groups"]
    settings.SSO_ALLOWED_DOMAINS = ["example.com"]
    settings.SSO_ROLE_MAP = {
        "console-support": "Support",
        "console-audit": "Auditor",
        "console-admins": "Session admin",
    }
    yield provider
    provider.stop()
