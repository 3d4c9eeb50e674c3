"""The toolkit catalog: `GET /toolkits`, `GET /toolkits/{slug}`, `GET /toolkits/categories`,
`POST /toolkits/multi`, and access for tests."""

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
# The list filters the emulator honours (others are accepted and ignored).
_FILTERS = ("category", "search", "managed_by", "type", "sort_by")


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
        filters = {key: query_first(query, key) for key in _FILTERS}
        return Response(200, self._toolkit_page(filters, query), {})

    def _h_toolkits_multi(self, params: dict[str, str], query: Query, body: Any) -> Response:
        """The list's items and envelope for the filters in the body: `toolkits` (slugs, in
        the catalog's order), `category`, `managed_by`, `sort_by`, `limit`, `cursor`."""
        with self._lock:
            known = {tk["slug"] for tk in self._catalog}
        filters = {key: body.get(key) for key in _FILTERS}
        wanted = body.get("toolkits")
        slugs = None if wanted is None else {s.strip().lower() for s in wanted} & known
        paging = {k: [str(body[k])] for k in ("limit", "cursor") if body.get(k) is not None}
        return Response(200, self._toolkit_page(filters, paging, slugs=slugs), {})

    def _h_toolkits_categories(self, params: dict[str, str], query: Query, body: Any) -> Response:
        """Every category the catalog's toolkits name, by name, in one page."""
        with self._lock:
            found = {c["id"]: c["name"] for tk in self._catalog for c in tk["categories"]}
        items = [{"id": i, "name": n} for i, n in sorted(found.items(), key=lambda c: c[1])]
        page = paginate(items, {}, default_limit=max(len(items), 1), max_limit=max(len(items), 1))
        return Response(200, page, {})

    def _toolkit_page(
        self, filters: dict[str, Any], paging: Query, *, slugs: set[str] | None = None
    ) -> dict[str, Any]:
        with self._lock:
            toolkits = list(self._catalog)
        if slugs is not None:
            toolkits = [tk for tk in toolkits if tk["slug"] in slugs]
        if filters["category"]:
            toolkits = [tk for tk in toolkits if cat.matches_category(tk, filters["category"])]
        if filters["search"]:
            toolkits = [tk for tk in toolkits if cat.matches_search(tk, filters["search"])]
        if filters["managed_by"] == "project" or filters["type"] == "custom":
            toolkits = []  # every emulated toolkit is a native, Composio-managed one
        if filters["sort_by"] == "alphabetically":
            toolkits = sorted(toolkits, key=lambda tk: tk["name"].lower())
        items = [cat.toolkit_list_item(tk) for tk in toolkits]
        return paginate(
            items, paging, default_limit=TOOLKITS_DEFAULT_LIMIT, max_limit=TOOLKITS_MAX_LIMIT
        )

    def _h_toolkits_get(self, params: dict[str, str], query: Any, body: Any) -> Response:
        slug = params["slug"].lower()
        with self._lock:
            tk = self._toolkit(slug)
        if tk is None:
            raise ApiError(404, f"Toolkit {slug} not found", slug="Toolkit_NotFound", code=10404)
        return Response(200, cat.toolkit_detail(tk), {})
