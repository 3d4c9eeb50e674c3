"""The second factors' secrets, encrypted at rest (allauth's MFA adapter `encrypt`/`decrypt`).

allauth stores each TOTP key and the recovery codes' seed in `mfa_authenticator.data`. Whoever
can read that table (a backup, a replica, an insider with SQL) could otherwise compute any staff
user's codes. They are stored as `enc1:<Fernet token>` (AES-128-CBC with HMAC-SHA256, from
`cryptography`), under a key derived from the first of MFA_SECRET_KEYS; every key of that list
still decrypts, so a new key goes first and an old one stays until nothing uses it. A value
without the prefix was written before encryption at rest and is read as it is.
"""

from __future__ import annotations

import base64
import logging
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

logger = logging.getLogger(__name__)

PREFIX = "enc1:"


def _derived(secret: str) -> Fernet:
    """A Fernet key from any secret string (HKDF-SHA256, its own info: no other use shares it)."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"tool-router-console mfa secrets"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derived(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.MFA_SECRET_KEYS) or (settings.SECRET_KEY,))


def encrypt(text: str) -> str:
    return PREFIX + _current().encrypt(text.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption at rest
    try:
        return _current().decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        logger.error("An MFA secret could not be decrypted: MFA_SECRET_KEYS lost its key.")
        raise
