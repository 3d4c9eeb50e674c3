"""Who the signed-in staff user is and what they may do, from the shared cache.

Every request needs the staff user's row (is the account still active, does the session still
match its password) and, for the first permission check, their permission set: three queries
(`auth_user`, then user and group permissions) that Django's `ModelBackend` repeats on every
request. `CachedPermissionsBackend` keeps the three answers in the shared cache
(`console_cache`, console/settings.py CACHES) as one entry per staff user, read together with the
cache's generation in one query (`cache.get_many`).

The entry is forgotten whenever what it holds may change, through the ORM:

- the user is saved or deleted (deactivation, a new password, `is_staff`/`is_superuser`);
- their groups or direct permissions change (`m2m_changed` on `User.groups` and
  `User.user_permissions`, from either side, `clear()` included);
- a group's permissions change, or a group or permission is deleted: every entry is forgotten
  (the generation changes), since such a change reaches users the signal does not name.

So a role revoked in the admin or by code takes effect at the user's next request. A change
written to the auth tables with raw SQL sends no signal: run `manage.py forget_permissions`
after it, or wait `PERMISSION_CACHE_SECONDS` (the entries' lifetime; 0 turns the cache off).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

_GENERATION_KEY = "principal:generation"
_VERSION = 1


def _key(user_id: Any) -> str:
    return f"principal:v{_VERSION}:{user_id}"


def _generation() -> str:
    """The current generation, made if the cache has none (never None, so an entry written
    before the generation key was culled can never match again)."""
    token = uuid.uuid4().hex
    if cache.add(_GENERATION_KEY, token, timeout=None):
        return token
    return cache.get(_GENERATION_KEY) or token


class CachedPermissionsBackend(ModelBackend):
    """`ModelBackend` whose `get_user` answers from one cache read: the user row and their user
    and group permission sets (filled on a miss; see the module's docstring for when an entry is
    forgotten)."""

    def get_user(self, user_id: Any) -> Any:
        seconds = settings.PERMISSION_CACHE_SECONDS
        if seconds <= 0:
            return super().get_user(user_id)
        found = cache.get_many([_key(user_id), _GENERATION_KEY])
        entry, generation = found.get(_key(user_id)), found.get(_GENERATION_KEY)
        if entry is not None and generation is not None and entry[0] == generation:
            _, user, user_perms, group_perms = entry
        else:
            generation = generation or _generation()
            user = super().get_user(user_id)
            if user is None:
                return None
            user_perms = self.get_user_permissions(user)
            group_perms = self.get_group_permissions(user)
            cache.set(_key(user_id), (generation, user, user_perms, group_perms), seconds)
        user._user_perm_cache = set(user_perms)
        user._group_perm_cache = set(group_perms)
        return user


# --- Forgetting ----------------------------------------------------------------------------


def forget_user(*user_ids: Any) -> None:
    """Forget these users' entries now and again when the transaction commits (a request that
    read the old rows just before the commit may have stored them meanwhile)."""
    keys = [_key(pk) for pk in user_ids if pk is not None]
    if not keys:
        return
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))


def forget_all() -> None:
    """Forget every entry: a new generation (now and again at commit)."""

    def bump() -> None:
        cache.set(_GENERATION_KEY, uuid.uuid4().hex, timeout=None)

    bump()
    transaction.on_commit(bump)


def _on_user_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget_user(instance.pk)


def _on_user_groups_or_permissions(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """`User.groups` / `User.user_permissions` changed, from the user's side (instance is the
    user) or from the group's or permission's (instance is it, pk_set the users)."""
    if action not in {"post_add", "post_remove", "pre_clear", "post_clear"}:
        return
    if not reverse:
        forget_user(instance.pk)
    elif pk_set:
        forget_user(*pk_set)
    else:
        # A group's or permission's `user_set.clear()`: whose it was is gone after the clear.
        forget_all()


def _on_everyone(sender: Any, action: str = "", **kwargs: Any) -> None:
    """A group's permissions, a group or a permission changed: everyone's entry may hold it."""
    if sender in (Group, Permission) or action in {"post_add", "post_remove", "post_clear"}:
        forget_all()


def connect() -> None:
    user_model = get_user_model()
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid="principals.user_saved")
    post_delete.connect(_on_user_saved, sender=user_model, dispatch_uid="principals.user_deleted")
    for through in (user_model.groups.through, user_model.user_permissions.through):
        m2m_changed.connect(
            _on_user_groups_or_permissions,
            sender=through,
            dispatch_uid=f"principals.m2m.{through._meta.label}",
        )
    m2m_changed.connect(
        _on_everyone, sender=Group.permissions.through, dispatch_uid="principals.group_perms"
    )
    for model in (Group, Permission):
        for name, signal in (("deleted", pre_delete), ("saved", post_save)):
            signal.connect(
                _on_everyone, sender=model, dispatch_uid=f"principals.{model.__name__}.{name}"
            )
