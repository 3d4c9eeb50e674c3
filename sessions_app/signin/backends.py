"""allauth's authentication backend, for signing in only.

Permissions come from `sessions_app.principals.CachedPermissionsBackend` (cached per staff user).
allauth's backend is a ModelBackend too: left as it is, every permission a user lacks would be
looked up again here, uncached, two queries a request.
"""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend


class SignInOnlyBackend(AuthenticationBackend):
    """Authenticates like allauth's backend; grants and reports no permission."""

    def get_user_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return False
