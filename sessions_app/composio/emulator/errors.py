"""Composio's error envelope and the errors more than one resource raises."""

from __future__ import annotations

from typing import Any

_STATUS_SLUGS = {
    400: "HTTP_BadRequest",
    401: "HTTP_Unauthorized",
    403: "HTTP_Forbidden",
    404: "HTTP_NotFound",
    405: "HTTP_MethodNotAllowed",
    408: "HTTP_RequestTimeout",
    409: "HTTP_Conflict",
    422: "HTTP_UnprocessableEntity",
    429: "HTTP_TooManyRequests",
    500: "HTTP_InternalServerError",
    502: "HTTP_BadGateway",
    503: "HTTP_ServiceUnavailable",
    504: "HTTP_GatewayTimeout",
}


def error_code(status: int) -> int:
    """Composio's numeric error code for an HTTP status without a specific code."""
    return 10000 + status


class ApiError(Exception):
    """Raised by handlers; rendered as Composio's error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        slug: str | None = None,
        code: int | None = None,
        errors: list[str] | None = None,
        suggested_fix: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.slug = slug or _STATUS_SLUGS.get(status, f"HTTP_{status}")
        self.code = code if code is not None else error_code(status)
        self.errors = errors
        self.suggested_fix = suggested_fix
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The `{"error": {...}}` body Composio answers with, naming `request_id`."""
        error: dict[str, Any] = {
            "message": self.message,
            "code": self.code,
            "slug": self.slug,
            "status": self.status,
            "request_id": request_id,
        }
        if self.suggested_fix:
            error["suggested_fix"] = self.suggested_fix
        if self.errors:
            error["errors"] = list(self.errors)
        return {"error": error}


def validation_error(field: str, detail: str = "Invalid input") -> ApiError:
    """A 400 naming the request field that failed validation."""
    return ApiError(
        400,
        "Validation error while processing request",
        errors=[f"Error in {field}: {detail}"],
    )


def session_not_found(session_id: str) -> ApiError:
    """The 404 Composio answers for an unknown tool router session."""
    return ApiError(
        404,
        f"Tool router session {session_id} not found",
        slug="ToolRouterV2_SessionNotFound",
        code=10404,
    )


def unknown_toolkit(slug: str) -> str:
    """The `errors` entry Composio gives for a toolkit slug that does not exist."""
    return f"Error in payload.toolkits: toolkit '{slug}' does not exist"
