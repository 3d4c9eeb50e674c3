"""What the signed-in staff user may do, from the shared cache.

Every request of a staff user checks permissions, and Django's `ModelBackend` reads them with two
queries (user and group permissions) on every request. `CachedPermissionsBackend` keeps both
sets in the shared cache (`console_cache`, console/settings.py CACHES), one entry per staff user,
read together with the cache's generation in one query (`cache.get_many`). The user's own row is
still read from `auth_user` on every request, so a deactivation, a new password or a lost
superuser flag applies at the next request however it was written (an entry made for a
superuser serves only while the row still says superuser).

The entry is forgotten whenever what it holds may change, through the ORM:

- the user is saved or deleted;
- their groups or direct permissions change (`m2m_changed` on `User.groups` and
  `User.user_permissions`, from either side, `clear()` included);
- a group's permissions change, or a group or permission is saved or deleted: every entry is
  forgotten (the generation changes), since such a change reaches users the signal does not name.

So a role revoked in the admin or by code takes effect at the user's next request. A change
written to the auth tables' permission and group rows with raw SQL sends no signal: run
`manage.py forget_permissions` after it, or wait `PERMISSION_CACHE_SECONDS` (the entries'
lifetime; 0 turns the cache off).
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
_VERSION = 2


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
    """`ModelBackend` whose user and group permission sets come from one cache read (filled on a
    miss; see the module's docstring for when an entry is forgotten)."""

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)  # the row itself: one query, None when inactive
        seconds = settings.PERMISSION_CACHE_SECONDS
        if user is None or seconds <= 0:
            return user
        found = cache.get_many([_key(user.pk), _GENERATION_KEY])
        entry, generation = found.get(_key(user.pk)), found.get(_GENERATION_KEY)
        if (
            entry is not None
            and generation is not None
            and entry[0] == generation
            and entry[1] == user.is_superuser
        ):
            user._user_perm_cache, user._group_perm_cache = set(entry[2]), set(entry[3])
            return user
        generation = generation or _generation()
        user_perms = self.get_user_permissions(user)  # sets user._user_perm_cache
        group_perms = self.get_group_permissions(user)
        cache.set(
            _key(user.pk),
            (generation, user.is_superuser, frozenset(user_perms), frozenset(group_perms)),
            seconds,
        )
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
