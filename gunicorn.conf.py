"""Gunicorn settings for production: `gunicorn console.wsgi` picks this file up from the cwd."""

import multiprocessing
import os
from pathlib import Path

import environ
from gunicorn.http import wsgi as _gunicorn_wsgi

# The same .env the settings read, so gunicorn and Django see one DJANGO_TRUSTED_PROXIES.
environ.Env.read_env(Path(__file__).resolve().parent / ".env", overwrite=False)

# Loopback unless told otherwise: the console is meant to sit behind a reverse proxy.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Composio calls are bounded by their own timeouts (connect 3 s, read 10 s); leave headroom.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
# A worker is replaced after this many requests (a guard against slow leaks). Each replacement
# costs a process start and the Composio SDK's import (seconds of CPU); at 2000, a 2-core box
# serving 100 requests/s replaced every worker within the same minute (bench/load.py, docs/load.md).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10
# An idle keep-alive connection stays open this long, longer than a reverse proxy keeps its own
# idle upstream connections (nginx's keepalive_timeout and AWS ALB's idle timeout: 60 s), so the
# proxy closes them, not gunicorn. At gunicorn's default of 2 s, a connection could close under a
# request sent just then, and a POST lost that way is an error for its user (bench/load.py saw a
# reveal fail so, with 1-3 s between a person's clicks). gthread workers keep idle connections in
# their poller, not in a thread.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# The console writes its own structured access line (with the request id) per request.
accesslog = None
errorlog = "-"
# The proxies the console trusts (settings.TRUSTED_PROXIES reads the same variable), and nobody
# when it is empty; gunicorn validates the CIDRs itself. Only X-Forwarded-Proto marks a request as
# HTTPS: gunicorn's defaults would also believe X-Forwarded-Ssl and X-Forwarded-Protocol.
forwarded_allow_ips = os.environ.get("DJANGO_TRUSTED_PROXIES", "")
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

_gunicorn_default_headers = _gunicorn_wsgi.Response.default_headers


def _default_headers_without_server(self: _gunicorn_wsgi.Response) -> list[str]:
    """gunicorn's status line and headers less its `Server: gunicorn` banner.

    gunicorn has no setting for the banner, and blanking `gunicorn.SERVER` still sends an empty
    `Server:`; this file is read by the arbiter before it forks, so every worker answers without.
    """
    return [
        line for line in _gunicorn_default_headers(self) if not line.lower().startswith("server:")
    ]


_gunicorn_wsgi.Response.default_headers = _default_headers_without_server
