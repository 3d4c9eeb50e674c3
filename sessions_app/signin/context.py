"""What the sign-in page shows: the SSO button (and its label) and whether passwords are for
break-glass accounts only."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from sessions_app.signin import sso


def signin(request: HttpRequest) -> dict[str, object]:
    return {
        "sso_enabled": sso.enabled(),
        "sso_name": settings.SSO_PROVIDER_NAME,
        "sso_only": settings.SSO_ONLY,
        "mfa_required": settings.MFA_REQUIRED,
    }
