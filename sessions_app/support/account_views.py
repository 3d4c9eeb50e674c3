"""The support card's connected accounts: the panel, reconnect links, enabling and disabling an
account. Each is an HTMX fragment of the card and a full page without JavaScript; every rule is
in `tool_router.accounts`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessions_app.access import support_required, wants_fragment
from sessions_app.http import HtmxHttpRequest
from sessions_app.models import ToolRouterSession
from sessions_app.support.views import _get_active_session, _no_store, _respond
from sessions_app.tool_router import accounts

PANEL_PAGE = "sessions_app/support/connections_panel.html"
PANEL = "sessions_app/support/_connections_panel.html"


def _panel_context(
    request: HtmxHttpRequest, session: ToolRouterSession, panel: accounts.AccountsPanel
) -> dict[str, Any]:
    return {
        "session": session,
        "end_user": session.end_user,
        "panel": panel,
        "can_link": request.user.has_perm(accounts.CREATE_LINK),
        "can_change": request.user.has_perm(accounts.CHANGE_ACCOUNT),
    }


def _panel_response(
    request: HtmxHttpRequest,
    session: ToolRouterSession,
    panel: accounts.AccountsPanel,
    *,
    refused: bool = False,
) -> HttpResponse:
    status = HTTPStatus.TOO_MANY_REQUESTS if refused else HTTPStatus.OK
    response = _respond(
        request,
        page=PANEL_PAGE,
        fragment=PANEL,
        context=_panel_context(request, session, panel),
        status=status,
    )
    if refused and panel.retry_after:
        response["Retry-After"] = str(panel.retry_after)
    return _no_store(response)


@require_GET
@support_required()
def support_session_accounts(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """The connections panel: per toolkit, the account the session uses; the user's others."""
    session = _get_active_session(public_id)
    panel = accounts.accounts_panel(session=session, actor=request.user, request=request)
    return _panel_response(request, session, panel)


@require_POST
@support_required()
def support_session_accounts_check(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """The panel's "check now": past the cache, within the connections' check-now limit."""
    session = _get_active_session(public_id)
    panel = accounts.accounts_panel_check_now(session=session, actor=request.user, request=request)
    return _panel_response(request, session, panel, refused=panel.retry_after is not None)


@require_POST
@support_required(accounts.CREATE_LINK)
def support_connect_link(request: HtmxHttpRequest, public_id: UUID, toolkit: str) -> HttpResponse:
    """Make a reconnect link for one toolkit of the session and show it once."""
    session = _get_active_session(public_id)
    result = accounts.connect_link_create(
        session=session, toolkit=toolkit, actor=request.user, request=request
    )
    context = {
        "session": session,
        "end_user": session.end_user,
        "toolkit": toolkit.lower(),
        "link_url": result.url,
        "error": "" if result.ok else result.message,
        "masked_account": result.masked_account,
        "link_seconds": settings.CONNECT_LINK_SECONDS,
    }
    response = _respond(
        request,
        page="sessions_app/support/connect_link.html",
        fragment=(
            "sessions_app/support/_connect_link.html"
            if result.ok
            else "sessions_app/support/_connect_link_button.html"
        ),
        context=context,
        status=result.status,
    )
    if result.retry_after:
        response["Retry-After"] = str(result.retry_after)
    return _no_store(response)


@require_http_methods(["GET", "POST"])
@support_required(accounts.CHANGE_ACCOUNT)
def support_connected_account_status(
    request: HtmxHttpRequest, public_id: UUID, account: str
) -> HttpResponse:
    """GET: the confirmation naming the user, toolkit and account; POST: enable or disable it."""
    session = _get_active_session(public_id)
    if request.method == "GET":
        found = accounts.find_account(session=session, key=account, request=request)
        status = HTTPStatus.OK if found.account else HTTPStatus.NOT_FOUND
        return _no_store(
            _respond(
                request,
                page="sessions_app/support/account_status_confirm.html",
                fragment="sessions_app/support/_account_status_confirm.html",
                context={
                    "session": session,
                    "end_user": session.end_user,
                    "found": found,
                    "key": account,
                },
                status=status,
            )
        )
    enabled = request.POST.get("enabled", "").lower()
    if enabled not in ("true", "false"):
        return HttpResponse("Say whether to enable or disable the account.", status=400)
    result = accounts.connected_account_set_enabled(
        session=session,
        key=account,
        enabled=enabled == "true",
        reason=request.POST.get("reason", ""),
        actor=request.user,
        request=request,
    )
    messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR, result.message)
    if not wants_fragment(request):
        return redirect("sessions_app:support_user_card", public_id=session.end_user.public_id)
    panel = accounts.accounts_panel(session=session, actor=request.user, request=request)
    context = {**_panel_context(request, session, panel), "messages_oob": True}
    response = _respond(
        request, page=PANEL_PAGE, fragment=PANEL, context=context, status=HTTPStatus.OK
    )
    return _no_store(response)
