"""The toolkit catalog: `GET /toolkits`, `GET /toolkits/{slug}`, and access for tests."""

from __future__ import annotations

import copy
from typing import Any

from . import catalog as cat
from .errors import ApiError
from .http import Response
from .paging import Query, paginate, query_first
from .state import EmulatorState

TOOLKITS_DEFAULT_LIMIT = 20
TOOLKITS_MAX_LIMIT = 1000


class ToolkitsMixin(EmulatorState):
    """The catalog the emulator serves, and its two toolkit endpoints."""

    @property
    def catalog(self) -> list[dict[str, Any]]:
        """A copy of the catalog, as normalized entries."""
        with self._lock:
            return copy.deepcopy(self._catalog)

    def set_catalog(self, toolkits: list[dict[str, Any]]) -> None:
        """Replace the catalog; each entry is normalized as `catalog.normalize_entry` does."""
        entries = [cat.normalize_entry(tk) for tk in toolkits]
        with self._lock:
            self._catalog = entries

    def _h_toolkits_list(self, params: dict[str, str], query: Query, body: Any) -> Response:
        with self._lock:
            toolkits = list(self._catalog)
        category = query_first(query, "category")
        if category:
            toolkits = [tk for tk in toolkits if cat.matches_category(tk, category)]
        search = query_first(query, "search")
        if search:
            toolkits = [tk for tk in toolkits if cat.matches_search(tk, search)]
        if query_first(query, "managed_by") == "project" or query_first(query, "type") == "custom":
            toolkits = []  # every emulated toolkit is a native, Composio-managed one
        if query_first(query, "sort_by") == "alphabetically":
            toolkits = sorted(toolkits, key=lambda tk: tk["name"].lower())
        items = [cat.toolkit_list_item(tk) for tk in toolkits]
        page = paginate(
            items, query, default_limit=TOOLKITS_DEFAULT_LIMIT, max_limit=TOOLKITS_MAX_LIMIT
        )
        return Response(200, page, {})

    def _h_toolkits_get(self, params: dict[str, str], query: Any, body: Any) -> Response:
        slug = params["slug"].lower()
        with self._lock:
            tk = self._toolkit(slug)
        if tk is None:
            raise ApiError(404, f"Toolkit {slug} not found", slug="Toolkit_NotFound", code=10404)
        return Response(200, cat.toolkit_detail(tk), {})
