"""System checks for the audit chain's key: malformed keys always; on deploy, a missing key or the
public dev key."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from sessions_app.chain.hashing import MissingAuditKey, keyring

_HINT = "e.g. AUDIT_HMAC_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')"


@checks.register(checks.Tags.security)
def audit_keys_are_well_formed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001: AUDIT_HMAC_KEYS/AUDIT_HMAC_KEY cannot be read."""
    try:
        keyring()
    except MissingAuditKey:
        return []  # a deploy check (E002)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="sessions_app.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def audit_key_is_not_the_dev_key(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E002 (deploy): production has no audit key, or the chain is signed with the dev key."""
    try:
        ring = keyring()
    except MissingAuditKey as exc:
        return [checks.Error(str(exc), hint=_HINT, id="sessions_app.E002")]
    except ImproperlyConfigured:
        return []  # reported by E001
    if not ring.is_dev:
        return []
    return [
        checks.Error(
            "The audit chain is signed with the public development key: anyone could re-chain "
            "edited events. Set AUDIT_HMAC_KEY (and AUDIT_HMAC_KEY_ID) or AUDIT_HMAC_KEYS from "
            "a secret store.",
            hint=_HINT,
            id="sessions_app.E002",
        )
    ]
