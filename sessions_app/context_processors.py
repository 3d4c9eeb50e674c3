from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from sessions_app import navigation


def console(request: HttpRequest) -> dict[str, object]:
    """Tells every page whether sessions are real or emulated, and the links its navigation
    offers (worked out only when a page shows the navigation)."""
    return {
        "composio_emulated": not settings.COMPOSIO_API_KEY,
        "nav_links": SimpleLazyObject(lambda: navigation.nav_links(request)),
    }
