"""The support console: look an end user up, see their session, reveal its MCP URL (audited)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from sessions_app import navigation
from sessions_app.access import support_required, wants_fragment
from sessions_app.http import HtmxHttpRequest
from sessions_app.models import EndUser, ToolRouterSession
from sessions_app.signin.stepup import REVEAL, step_up_required
from sessions_app.tool_router import (
    attention,
    connections,
    drift,
    mcp_url,
    selectors,
    sessions,
    timeline,
)
from sessions_app.tool_router.reveal import Withheld, mcp_url_reveal


def _reveal_seconds() -> int:
    return settings.SUPPORT_REVEAL_SECONDS


def _get_end_user(public_id: UUID) -> EndUser:
    try:
        return EndUser.objects.get(public_id=public_id)
    except EndUser.DoesNotExist:
        raise Http404("No such end user.") from None


def _get_active_session(public_id: UUID) -> ToolRouterSession:
    try:
        return ToolRouterSession.objects.select_related("end_user").get(
            public_id=public_id, status=ToolRouterSession.Status.ACTIVE
        )
    except ToolRouterSession.DoesNotExist:
        raise Http404("No such active session.") from None


def _respond(
    request: HtmxHttpRequest,
    *,
    page: str,
    fragment: str,
    context: dict[str, Any],
    status: int = HTTPStatus.OK,
) -> HttpResponse:
    """The fragment for HTMX, the full page otherwise (and for history restores)."""
    template = fragment if wants_fragment(request) else page
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _card_context(
    request: HtmxHttpRequest,
    end_user: EndUser,
    *,
    card: selectors.UserCard | None = None,
    **extra: Any,
) -> dict[str, Any]:
    if card is None:
        card = selectors.end_user_card(end_user=end_user)
    return {
        "card": card,
        "masked": mcp_url.mask(card.active.mcp_url) if card.active else None,
        # The admin pages of this user and session the viewer may open ("" where not).
        "admin_user_url": navigation.admin_url(request, card.end_user),
        "admin_session_url": navigation.admin_url(request, card.active),
        "can_refresh": request.user.has_perm("sessions_app.refresh_session"),
        "reveal_seconds": _reveal_seconds(),
        # The card's timeline (support/activity.py serves its other pages).
        "timeline": timeline.end_user_timeline(end_user=end_user),
        "can_view_audit_log": request.user.has_perm("sessions_app.view_auditevent"),
        **extra,
    }


# --- Lookup and card ---------------------------------------------------------------------------


@require_GET
@support_required()
def support_lookup(request: HtmxHttpRequest) -> HttpResponse:
    result = selectors.end_user_lookup(query=request.GET.get("q", ""))
    return _respond(
        request,
        page="sessions_app/lookup.html",
        fragment="sessions_app/_results.html",
        # Typing a new search closes the open card (an out-of-band swap in the fragment).
        context={
            "result": result,
            "query": result.query,
            "clear_card": wants_fragment(request),
            # The landing page's count; the results fragment (each keystroke) goes without.
            "stale_count": 0 if wants_fragment(request) else drift.stale_count(),
            # And how many users need attention (one count over an index; the card's pages,
            # which share the template, go without).
            "attention": None
            if wants_fragment(request)
            else {"count": attention.attention_count()},
        },
    )


@require_GET
@support_required()
def support_user_card(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    # The end user comes with their sessions, in one query.
    card = selectors.end_user_card_for(public_id=public_id)
    if card is None:
        raise Http404("No such end user.")
    return _respond(
        request,
        page="sessions_app/lookup.html",
        fragment="sessions_app/_card.html",
        context=_card_context(request, card.end_user, card=card),
    )


@require_GET
@support_required()
def support_user_row(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """One result row, re-fetched when the card changes the user's session."""
    end_user = _get_end_user(public_id)
    if not wants_fragment(request):
        return redirect("sessions_app:support_user_card", public_id=end_user.public_id)
    user = selectors.end_user_row(end_user=end_user)
    response = render(request, "sessions_app/_result_row.html", {"user": user})
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- Reveal ------------------------------------------------------------------------------------


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_POST
@support_required("sessions_app.reveal_mcp_url")
@step_up_required(REVEAL)
def support_mcp_reveal(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """Show one session's full MCP URL, only after the reveal is in the audit log."""
    session = _get_active_session(public_id)
    masked = mcp_url.mask(session.mcp_url)
    # Every variable the reveal templates read is set, so none is ever "missing": django.template
    # logs a missing variable at DEBUG together with the whole context (the full URL here).
    context: dict[str, Any] = {
        "session": session,
        "masked": masked,
        "end_user": session.end_user,
        "error": "",
        "oob": False,
    }
    reveal = mcp_url_reveal(session=session, actor=request.user, request=request)
    if not reveal.ok:
        status = {
            Withheld.LIMIT: HTTPStatus.TOO_MANY_REQUESTS,
            Withheld.STALE: HTTPStatus.CONFLICT,
        }.get(reveal.withheld, HTTPStatus.SERVICE_UNAVAILABLE)
        refused = _no_store(
            _respond(
                request,
                page="sessions_app/reveal.html",
                fragment="sessions_app/_mcp_masked.html",
                context={**context, "error": reveal.message},
                status=status,
            )
        )
        if reveal.retry_after:
            refused["Retry-After"] = str(reveal.retry_after)
        return refused
    response = _respond(
        request,
        page="sessions_app/reveal.html",
        fragment="sessions_app/_mcp_revealed.html",
        context={**context, "mcp_url": reveal.url, "reveal_seconds": _reveal_seconds()},
    )
    return _no_store(response)


# --- Connections -------------------------------------------------------------------------------


def _connections_response(
    request: HtmxHttpRequest,
    public_id: UUID,
    service: Callable[..., connections.ConnectionCheck],
) -> HttpResponse:
    """The active session's badges as `service` (a connections service) checks them: the badges
    for HTMX, the whole card otherwise. A check that could not ask Composio (`retry_after`) is a
    429 with Retry-After when it was a "check now"."""
    session = _get_active_session(public_id)
    check = service(session=session, actor=request.user, request=request)
    refused = request.method == "POST" and check.retry_after is not None
    status = HTTPStatus.TOO_MANY_REQUESTS if refused else HTTPStatus.OK
    if wants_fragment(request):
        response = _respond(
            request,
            page="sessions_app/lookup.html",
            fragment="sessions_app/_connections.html",
            context={"check": check, "session": session},
            status=status,
        )
    else:
        response = _respond(
            request,
            page="sessions_app/lookup.html",
            fragment="sessions_app/_card.html",
            context=_card_context(request, session.end_user, check=check),
            status=status,
        )
    if refused:
        response["Retry-After"] = str(check.retry_after)
    add_never_cache_headers(response)
    return response


@require_GET
@support_required()
def support_session_connections(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """The session's connection badges, from the shared cache while it is fresh."""
    return _connections_response(request, public_id, connections.tool_router_session_connections)


@require_POST
@support_required()
def support_session_connections_check(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """The check-now button: ask Composio past the cache, limited per staff user and session."""
    return _connections_response(
        request, public_id, connections.tool_router_session_connections_check_now
    )


# --- Refresh -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@support_required("sessions_app.refresh_session")
def support_session_refresh(request: HtmxHttpRequest, public_id: UUID) -> HttpResponse:
    """GET asks to confirm; POST replaces the user's session through the session service."""
    end_user = _get_end_user(public_id)
    if request.method == "GET":
        return _respond(
            request,
            page="sessions_app/refresh_confirm.html",
            fragment="sessions_app/_refresh_confirm.html",
            context={"end_user": end_user},
        )

    result = sessions.tool_router_session_refresh(
        end_user=end_user, actor=request.user, request=request
    )
    level = messages.SUCCESS if result.ok else messages.ERROR
    messages.add_message(request, level, result.message)
    if not wants_fragment(request):
        return redirect("sessions_app:support_user_card", public_id=end_user.public_id)
    response = _respond(
        request,
        page="sessions_app/lookup.html",
        fragment="sessions_app/_card.html",
        context=_card_context(request, end_user, messages_oob=True),
    )
    return trigger_client_event(response, f"enduser-changed-{end_user.public_id}")
