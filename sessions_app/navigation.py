"""Where each role lands and which pages the navigation offers it: the one place that says so.

A role's landing is the first page of its work, one it may open (so landing never writes a
refusal): Support and Session admins the Lookup, Auditors the audit log (or the access report
when that is all they may read), Session admins without the Lookup their bulk jobs. A user with
no role has no landing (`None`): the root page tells them so. The navigation offers exactly the
pages its user may open, in the console's header and in the admin's (`templates/admin/
base_site.html`); a support card and the admin pages of its user link to each other, each link
shown only to whoever may open it (`card_url`, `admin_url`).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse

from sessions_app import access
from sessions_app.bulk import jobs as bulk

User = AbstractBaseUser | AnonymousUser

LOOKUP = ("Lookup", "/support/")
JOBS = ("Bulk jobs", "/jobs/")
AUDIT_LOG = ("Audit log", "/audit/events/")
ACCESS_REPORT = ("Access report", "/audit/access/")
ADMIN = ("Admin", "/admin/")


def may_use_lookup(user: User) -> bool:
    return access.may(user, *access.SUPPORT_PERMS)


def may_read_audit_log(user: User) -> bool:
    return access.may(user, "sessions_app.view_auditevent")


def may_read_access_report(user: User) -> bool:
    return access.may(user, "sessions_app.view_access_report")


def landing_url(user: User) -> str | None:
    """The page `user` starts on after logging in; `None` when they have no role yet."""
    if not user.is_authenticated:
        return None
    in_order = (
        (LOOKUP, may_use_lookup),
        (AUDIT_LOG, may_read_audit_log),
        (ACCESS_REPORT, may_read_access_report),
        (JOBS, bulk.may_see_jobs),
    )
    return next(((url for (_label, url), allowed in in_order if allowed(user))), None)


def may_open_admin(request: HttpRequest) -> bool:
    """Staff who may open at least one admin model (the admin index would list something)."""
    user = request.user
    return bool(user.is_active and user.is_staff and admin.site.get_app_list(request))


def nav_links(request: HttpRequest) -> list[tuple[str, str]]:
    """The navigation's (label, URL) links for the request's user: only pages they may open."""
    user = request.user
    if not user.is_authenticated:
        return []
    offered = [
        (LOOKUP, may_use_lookup(user)),
        (JOBS, bulk.may_see_jobs(user)),
        (AUDIT_LOG, may_read_audit_log(user)),
        (ACCESS_REPORT, may_read_access_report(user)),
        (ADMIN, may_open_admin(request)),
    ]
    return [link for link, allowed in offered if allowed]


def card_url(user: User, end_user: Model) -> str:
    """The support card of `end_user` when `user` may open it (the Lookup's role), else ""."""
    if not may_use_lookup(user):
        return ""
    return reverse("sessions_app:support_user_card", args=[end_user.public_id])


def admin_url(request: HttpRequest, obj: Model | None) -> str:
    """The admin page of `obj` (its change page, read-only for view-only staff) when the
    request's user may open it, else "" (no object, no admin, or no permission)."""
    if obj is None or not request.user.is_staff:
        return ""
    try:
        model_admin = admin.site.get_model_admin(type(obj))
    except NotRegistered:
        return ""
    if not model_admin.has_view_or_change_permission(request, obj):
        return ""
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
