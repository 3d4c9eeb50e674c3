"""System checks for the audit chain's key: malformed keys always, the public dev key on deploy."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from sessions_app.chain.hashing import keyring


@checks.register(checks.Tags.security)
def audit_keys_are_well_formed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001: AUDIT_HMAC_KEYS/AUDIT_HMAC_KEY cannot be read (or is missing under DJANGO_SECURE)."""
    try:
        keyring()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="sessions_app.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def audit_key_is_not_the_dev_key(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E002 (deploy): the audit chain would be signed with the public dev key."""
    try:
        ring = keyring()
    except ImproperlyConfigured:
        return []  # reported by E001
    if not ring.is_dev:
        return []
    return [
        checks.Error(
            "The audit chain is signed with the public development key: anyone could re-chain "
            "edited events. Set AUDIT_HMAC_KEY (and AUDIT_HMAC_KEY_ID) or AUDIT_HMAC_KEYS from "
            "a secret store.",
            hint="e.g. AUDIT_HMAC_KEY=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(48))')",
            id="sessions_app.E002",
        )
    ]
