"""allauth's OpenID Connect provider with a nonce: a fresh random one goes out with every
authorisation request, is kept in the sign-in's state (beside PKCE's verifier) and must come back
in the ID token (checked in `SocialAccountAdapter.pre_social_login`).

Its app comes from the SSO_* settings (`SocialAccountAdapter.list_apps`). A provider that cannot
be reached answers the console's "single sign-on failed" page, never a server error.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.providers.base import AuthAction
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import get_random_string
from requests import RequestException

NONCE_STATE_KEY = "nonce"


class ConsoleOIDCProvider(OpenIDConnectProvider):
    # allauth's own URLs (/accounts/oidc/<provider_id>/login/ and .../login/callback/).
    package = "allauth.socialaccount.providers.openid_connect"

    def get_auth_params_from_request(self, request: HttpRequest, action: str) -> dict:
        # Only the configured parameters: none chosen by whoever wrote the link.
        params = self.get_auth_params()
        if action == AuthAction.REAUTHENTICATE:
            # Step-up for an SSO user: the provider asks for the credentials again.
            params.update({"prompt": "login", "max_age": "0"})
        return params

    def get_scope_from_request(self, request: HttpRequest) -> list[str]:
        return self.get_scope()  # SSO_SCOPES, never widened by the link

    def redirect(
        self, request: HttpRequest, process: Any, next_url: Any = None, data: Any = None, **kwargs
    ) -> HttpResponse:
        nonce = get_random_string(43)
        auth_params = kwargs.pop("auth_params", None)
        if auth_params is None:
            auth_params = self.get_auth_params()
        auth_params = {**auth_params, "nonce": nonce}
        try:
            return super().redirect(
                request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs
            )
        except RequestException as error:
            # The discovery document could not be fetched: the provider is down or unreachable.
            return render_authentication_error(request, self, exception=error)
