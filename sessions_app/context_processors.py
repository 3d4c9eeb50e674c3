from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def console(request: HttpRequest) -> dict[str, object]:
    """Tells every page whether sessions are real or emulated."""
    return {"composio_emulated": not settings.COMPOSIO_API_KEY}
