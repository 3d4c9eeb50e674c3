"""The access report's charts: server-rendered SVG (no script), drawn from the report queries.

Presentation, beside the views: every value reaches the markup through `format_html`, so a
toolkit slug cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from sessions_app.audit.reports import DayCount, ToolkitAccess

_FLAGGED = "#b3261e"
_BAR = "#2357d9"
_GRANT = "#1f7a3d"
_REVOCATION = "#b3261e"


def users_per_toolkit_svg(rows: Sequence[ToolkitAccess], *, top: int = 15) -> SafeString:
    """Horizontal bars: end users per toolkit (the `top` most used), flagged toolkits in red."""
    shown = [row for row in rows if row.users > 0][:top]
    if not shown:
        return mark_safe('<p class="muted">No toolkit is in an active session.</p>')
    bar_h, gap, label_w, bar_w = 18, 6, 170, 420
    height = len(shown) * (bar_h + gap) + gap
    peak = max(row.users for row in shown)
    bars = format_html_join(
        "",
        "<g><title>{}: {} users{}</title>"
        '<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>'
        '<text x="{}" y="{}" font-size="12">{}</text></g>',
        (
            (
                row.slug,
                row.users,
                f" ({row.problem})" if row.flagged else "",
                label_w - 6,
                gap + i * (bar_h + gap) + 13,
                row.slug,
                label_w,
                gap + i * (bar_h + gap),
                max(1, round(bar_w * row.users / peak)),
                bar_h,
                _FLAGGED if row.flagged else _BAR,
                label_w + max(1, round(bar_w * row.users / peak)) + 4,
                gap + i * (bar_h + gap) + 13,
                row.users,
            )
            for i, row in enumerate(shown)
        ),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{}" height="{}" '
        'viewBox="0 0 {} {}" aria-labelledby="users-per-toolkit-title">'
        '<title id="users-per-toolkit-title">End users per toolkit (top {})</title>{}</svg>',
        label_w + bar_w + 60,
        height,
        label_w + bar_w + 60,
        height,
        len(shown),
        bars,
    )


# The grants chart's geometry: its width, the height of each half, the left margin for the scale.
_WIDTH, _HALF, _LEFT = 720, 80, 40
_AXIS = _HALF + 10


def _day_bars(days: Sequence[DayCount], peak: int) -> SafeString:
    """One group per day: its grants as a bar up from the axis, its revocations down from it.

    Only numbers and ISO dates reach this markup (no text anyone typed), so it is written with
    f-strings: `format_html` for each of up to 366 days cost more than the rest of the page."""
    step = (_WIDTH - _LEFT) / len(days)
    width = f"{max(step - 2, 1):.1f}"
    parts = []
    for i, d in enumerate(days):
        x = f"{_LEFT + i * step:.1f}"
        up = round(_HALF * int(d.grants) / peak)
        down = round(_HALF * int(d.revocations) / peak)
        parts.append(
            f"<g><title>{d.day.isoformat()}: {int(d.grants)} granted, "
            f"{int(d.revocations)} revoked</title>"
            f'<rect x="{x}" y="{_AXIS - up}" width="{width}" height="{up}" fill="{_GRANT}"></rect>'
            f'<rect x="{x}" y="{_AXIS}" width="{width}" height="{down}" fill="{_REVOCATION}">'
            "</rect></g>"
        )
    return mark_safe("".join(parts))  # noqa: S308 - numbers and dates only (above)


def grants_over_time_svg(days: Sequence[DayCount]) -> SafeString:
    """Per day: grants as green bars above the axis, revocations as red bars below."""
    if not days:
        return mark_safe("")
    peak = max([1, *(d.grants for d in days), *(d.revocations for d in days)])
    first, last = days[0].day.isoformat(), days[-1].day.isoformat()
    height = 2 * _AXIS + 14
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{}" height="{}" '
        'viewBox="0 0 {} {}" aria-labelledby="grants-title">'
        '<title id="grants-title">Toolkit grants (up) and revocations (down) per day, {} to {}'
        "</title>"
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#5b6474"></line>'
        '<text x="0" y="{}" font-size="11">+{}</text><text x="0" y="{}" font-size="11">-{}</text>'
        '<text x="{}" y="{}" font-size="11">{}</text>'
        '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>{}</svg>',
        _WIDTH,
        height,
        _WIDTH,
        height,
        first,
        last,
        _LEFT,
        _AXIS,
        _WIDTH,
        _AXIS,
        22,
        peak,
        2 * _AXIS - 2,
        peak,
        _LEFT,
        2 * _AXIS + 12,
        first,
        _WIDTH,
        2 * _AXIS + 12,
        last,
        _day_bars(days, peak),
    )
