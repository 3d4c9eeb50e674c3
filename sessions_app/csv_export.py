"""Streamed CSV downloads, safe to open in a spreadsheet. Every CSV the console serves uses this."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.cache import add_never_cache_headers

# A spreadsheet runs a cell that starts like a formula (CSV injection); these get a leading '.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


def cell(value: object) -> str:
    """One value as a CSV cell: UTC ISO times, blank for None, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The header and each row as CSV lines, every value through `cell`."""
    writer = csv.writer(_Echo())
    yield writer.writerow(list(header))
    for row in rows:
        yield writer.writerow([cell(value) for value in row])


def csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable[object]]) -> Any:
    """A streamed, never-cached CSV attachment."""
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    add_never_cache_headers(response)
    return response


class Columns:
    """Some of a report's CSV columns, in order. `cells` maps each header the report knows to
    the function that reads its cell from a row, so a header means the same in every export."""

    def __init__(self, cells: Mapping[str, Callable[[Any], object]], *header: str) -> None:
        self.header = list(header)
        self._getters = [cells[name] for name in header]

    def row(self, item: Any) -> list[object]:
        return [get(item) for get in self._getters]

    def response(self, filename: str, items: Iterable[Any]) -> Any:
        """`csv_response` of these columns, a row an item."""
        return csv_response(filename, self.header, map(self.row, items))
