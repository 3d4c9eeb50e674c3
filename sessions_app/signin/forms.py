"""allauth's MFA code forms (sign-in and asking again) behind django-axes: a TOTP or recovery code
guessed wrong counts as a failed login for the (username, IP) pair, and a locked-out pair's code
is not even checked (AxesMiddleware answers its lock-out page)."""

from __future__ import annotations

from allauth.core import context
from allauth.mfa.base import forms as mfa_forms
from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.contrib.auth.signals import user_login_failed

LOCKED_OUT = "Too many failed attempts from your address; try again in a few minutes."


class _AxesGuardedCode:
    user: object

    def clean_code(self) -> str:
        request = context.request
        credentials = {"username": self.user.get_username()}
        if request is not None and not AxesProxyHandler.is_allowed(request, credentials):
            request.axes_locked_out = True
            raise forms.ValidationError(LOCKED_OUT, code="locked_out")
        try:
            return super().clean_code()  # type: ignore[misc]
        except forms.ValidationError:
            # django-axes counts it (and may lock the pair out); the trail records it.
            user_login_failed.send(
                sender=__name__, credentials=credentials, request=request, step="mfa"
            )
            raise


class AuthenticateForm(_AxesGuardedCode, mfa_forms.AuthenticateForm):
    pass


class ReauthenticateForm(_AxesGuardedCode, mfa_forms.ReauthenticateForm):
    pass
