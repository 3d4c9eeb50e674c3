"""Users needing attention: the support page listing end users whose session is in trouble,
the most recent problem first, paged. It reads only what the attention sweep stored
(`tool_router.attention`): opening it never asks Composio. An HTMX request gets the list alone
(the pager swaps it in place); without JavaScript each page is a whole page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from sessions_app.access import support_required
from sessions_app.http import HtmxHttpRequest
from sessions_app.support.views import _respond
from sessions_app.tool_router import attention


@require_GET
@support_required()
def support_attention(request: HtmxHttpRequest) -> HttpResponse:
    page = attention.attention_page(
        after=request.GET.get("after", "")[:64],
        before=request.GET.get("before", "")[:64],
        oldest=request.GET.get("oldest") == "1",
    )
    return _respond(
        request,
        page="sessions_app/support/attention.html",
        fragment="sessions_app/support/_attention.html",
        context={
            "listing": page,
            "threshold": settings.ATTENTION_FAILED_EXECUTIONS,
            "sweep_minutes": max(1, settings.ATTENTION_SWEEP_SECONDS // 60),
        },
    )
