"""allauth's admin pages the console keeps: a superuser can remove a staff member's lost
authenticator (an MFA reset, audited as `auth.mfa_removed`); nobody adds or edits one here.
Email addresses, SSO identities, SSO apps (configured from the environment) and provider tokens
(never stored) have no page."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from sessions_app import trail
from sessions_app.models import AuditEvent

for model in (EmailAddress, SocialAccount, SocialApp, SocialToken, Authenticator):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(Authenticator)
class AuthenticatorAdmin(admin.ModelAdmin):
    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Authenticator) -> None:
        self.delete_queryset(request, Authenticator.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Authenticator]) -> None:
        for authenticator in queryset.select_related("user"):
            authenticator.delete()
            trail.record(
                action="auth.mfa_removed",
                outcome=AuditEvent.Outcome.SUCCESS,
                request=request,
                details={
                    "type": str(authenticator.type),
                    "user": authenticator.user.get_username(),
                    "by_admin": True,
                },
            )
