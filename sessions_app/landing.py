"""The console's root page: sends each user to their role's landing (`navigation.landing_url`).

An explicit, safe `?next=` wins. A user with no role is told so here, with a 200 and no refusal
written: having no role yet is not an attempt at something refused.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from sessions_app import navigation


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    wanted = request.GET.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(wanted)
    url = navigation.landing_url(request.user)
    if url is None:
        return render(request, "sessions_app/no_role.html")
    return redirect(url)
