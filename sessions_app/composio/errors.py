"""What can go wrong when calling Composio: the seam's exceptions, and how an HTTP answer maps
onto them (including whether Composio may have acted)."""

from __future__ import annotations


class ComposioError(Exception):
    """Base of the seam's errors. `str()` is a sentence fit for a person."""

    outcome_unknown = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ComposioUnavailable(ComposioError):
    """Composio could not be reached or failed. If `outcome_unknown`, it may have acted."""

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class ComposioRateLimited(ComposioError):
    def __init__(self, message: str, *, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ComposioRejected(ComposioError):
    """Composio refused the request; it changed nothing. Carries its status, slug and message."""

    def __init__(self, message: str, *, status: int, slug: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug
        self.detail = detail


class ComposioNotFound(ComposioRejected):
    pass


class ComposioConflict(ComposioRejected):
    """The session's configuration changed since it was read (stale `expected_config_version`)."""


class ComposioNotConfigured(ComposioError):
    pass


def may_have_acted(mutating: bool) -> str:
    """The end of a sentence about a failed call: whether the outcome is unknown."""
    return "; it may have acted, the outcome is unknown." if mutating else "."


def from_status(
    status: int,
    *,
    slug: str,
    message: str,
    retry_after: str | None,
    what: str,
    mutating: bool,
) -> ComposioError:
    """The error for an HTTP error answer from Composio (`what` names the call)."""
    said = f": {message}" if message else ""
    if status == 429:
        seconds = _retry_after_seconds(retry_after)
        wait = f"retry in {seconds} s" if seconds is not None else "retry later"
        return ComposioRateLimited(
            f"Composio is rate limiting requests while {what}; {wait}.", retry_after=seconds
        )
    if status == 404:
        return ComposioNotFound(
            f"Composio does not know it ({what}){said}.", status=404, slug=slug, detail=message
        )
    rejected = {
        409: (
            ComposioConflict,
            f"Someone else changed this session at Composio; reload it and try again{said}.",
        ),
        401: (ComposioRejected, "Composio refused the API key (401): check COMPOSIO_API_KEY."),
        403: (ComposioRejected, f"The Composio API key lacks permission for this (403){said}."),
    }
    if status in rejected:
        error_class, sentence = rejected[status]
        return error_class(sentence, status=status, slug=slug, detail=message)
    if status >= 500:
        # 503 means Composio refused the work; any other 5xx on a change may hide a success.
        unknown = mutating and status != 503
        return ComposioUnavailable(
            f"Composio failed with HTTP {status} while {what}" + may_have_acted(unknown),
            outcome_unknown=unknown,
        )
    return ComposioRejected(
        f"Composio rejected the request (HTTP {status}) while {what}{said}.",
        status=status,
        slug=slug,
        detail=message,
    )


def _retry_after_seconds(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return max(0, int(float(raw)))
    except ValueError:
        return None
