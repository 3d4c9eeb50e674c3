"""Single sign-on rules: who may be provisioned, which roles a person's groups give, and the
provider's own MFA. Roles are set again from the claims at every SSO sign-in, so someone removed
from a group loses the role at the next one; superuser is never granted by a claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core import checks
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from sessions_app import roles, trail
from sessions_app.models import AuditEvent

PROVIDER_ID = "sso"
# The console's roles; SSO sets these groups and leaves any other group alone.
CONSOLE_ROLES = tuple(roles.ROLE_PERMISSIONS)


def enabled() -> bool:
    return bool(settings.SSO_ISSUER_URL and settings.SSO_CLIENT_ID)


def issuer_origin() -> str:
    """scheme://host[:port] of SSO_ISSUER_URL ("" when SSO is off)."""
    if not enabled():
        return ""
    parts = urlsplit(settings.SSO_ISSUER_URL)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def claims_of(extra_data: Mapping[str, Any]) -> dict[str, Any]:
    """The person's claims: the ID token's, with the userinfo endpoint's on top."""
    merged: dict[str, Any] = {}
    for part in ("id_token", "userinfo"):
        value = extra_data.get(part)
        if isinstance(value, Mapping):
            merged.update(value)
    return merged or dict(extra_data)


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower() if "@" in email else ""


def domain_allowed(email: str) -> bool:
    domain = email_domain(email)
    return bool(domain) and domain in settings.SSO_ALLOWED_DOMAINS


def groups_of(claims: Mapping[str, Any]) -> list[str]:
    value = claims.get(settings.SSO_GROUPS_CLAIM, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return []
    return [str(g) for g in value]


def roles_for(groups: Iterable[str]) -> list[str]:
    """The console roles the groups map to (SSO_ROLE_MAP), sorted, each once."""
    mapping = settings.SSO_ROLE_MAP
    return sorted({mapping[g] for g in groups if g in mapping and mapping[g] in CONSOLE_ROLES})


def provider_did_mfa(claims: Mapping[str, Any]) -> bool:
    """Whether the ID token says the provider checked a second factor (amr or acr), and the
    console is told to believe it (SSO_TRUST_PROVIDER_MFA)."""
    if not settings.SSO_TRUST_PROVIDER_MFA:
        return False
    amr = claims.get("amr", [])
    amr = [amr] if isinstance(amr, str) else amr if isinstance(amr, list) else []
    if set(map(str, amr)) & set(settings.SSO_MFA_AMR_VALUES):
        return True
    acr = claims.get("acr")
    return isinstance(acr, str) and acr in settings.SSO_MFA_ACR_VALUES


def set_roles(
    user: AbstractBaseUser, wanted: list[str], *, request: HttpRequest | None, groups: list[str]
) -> None:
    """Make the user's console roles exactly `wanted` (staff, never superuser by a claim);
    audit `auth.sso_roles` when they change."""
    before = sorted(user.groups.filter(name__in=CONSOLE_ROLES).values_list("name", flat=True))
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if before == wanted:
        return
    user.groups.remove(*Group.objects.filter(name__in=set(before) - set(wanted)))
    user.groups.add(*Group.objects.filter(name__in=set(wanted) - set(before)))
    trail.record(
        action="auth.sso_roles",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=user,
        request=request,
        details={
            "before": before,
            "after": wanted,
            "added": sorted(set(wanted) - set(before)),
            "removed": sorted(set(before) - set(wanted)),
            "groups": groups[:50],
        },
    )


def reauthentication_url(request: HttpRequest) -> str:
    """Step-up through the provider for an SSO user with no password or second factor here."""
    if not enabled():
        return reverse("login")
    base = reverse("openid_connect_login", kwargs={"provider_id": PROVIDER_ID})
    return f"{base}?{urlencode({'process': 'login', 'action': 'reauthenticate'})}"


@checks.register(checks.Tags.security)
def check_role_map(**_: Any) -> list[checks.CheckMessage]:
    """SSO_ROLE_MAP may only name the console's roles (a typo would grant nothing silently)."""
    unknown = sorted({r for r in settings.SSO_ROLE_MAP.values() if r not in CONSOLE_ROLES})
    if not unknown:
        return []
    return [
        checks.Error(
            f"SSO_ROLE_MAP names unknown roles {unknown}; the roles are {list(CONSOLE_ROLES)}.",
            id="sessions_app.E010",
        )
    ]
