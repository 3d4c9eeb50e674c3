"""`{% locator %}` and `{% locators_in %}`: a session id, or text naming one, as the user
viewing the page may see it; `{% card_url %}`: an end user's support card, for a viewer who may
open it. The rules live in `tool_router.locators` and `navigation`, never in a template."""

from __future__ import annotations

from typing import Any

from django import template

from sessions_app import navigation
from sessions_app.tool_router import locators

register = template.Library()


def _viewer(context: template.Context) -> Any:
    """The signed-in user the page is rendered for (None outside a request: masked)."""
    return getattr(context.get("request"), "user", None)


def _may_see_ids(context: template.Context) -> bool:
    """`locators.may_see_ids` for the viewer, asked once per request: a list of rows, each its
    own `{% include %}` (which starts a render context of its own), asks once, not per row."""
    request = context.get("request")
    if request is None:
        return False  # outside a request: masked
    viewer = getattr(request, "user", None)
    # Kept with the user it was asked for: a sign-out in the middle of a request asks again.
    asked = getattr(request, "_locators_may_see_ids", None)
    if asked is None or asked[0] is not viewer:
        asked = request._locators_may_see_ids = (viewer, locators.may_see_ids(viewer))
    return asked[1]


@register.simple_tag(takes_context=True)
def locator(context: template.Context, session_id: str, short: bool = False) -> str:
    """`{% locator session_id %}`: the id in full (its short form with `short=True`) for staff
    who may reveal MCP URLs, `trs_…#<fingerprint>` for everyone else."""
    return locators.shown(session_id or "", _may_see_ids(context), short=short)


@register.simple_tag(takes_context=True)
def locators_in(context: template.Context, text: str, *known: str) -> str:
    """`{% locators_in event.reason event.session_ref %}`: free text with every session id in it
    (the `known` ones and any shaped like one) masked for staff who may not reveal."""
    return locators.shown_in(text or "", _may_see_ids(context), [k for k in known if k])


@register.simple_tag(takes_context=True)
def card_url(context: template.Context, end_user: Any) -> str:
    """`{% card_url item.end_user as card %}`: the end user's support card when the viewer may
    open it, else ""."""
    viewer = _viewer(context)
    if end_user is None or viewer is None:
        return ""
    return navigation.card_url(viewer, end_user)
