#!/usr/bin/env bash
# Set up and run the test suite (SQLite by default; DATABASE_URL=postgres://... for PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# The SSO tests' OpenID Connect provider (pinned in tests/oidc/package-lock.json); skipped without it.
if [ ! -d tests/oidc/node_modules/oidc-provider ] && command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error || echo "npm ci failed: SSO tests skipped" >&2
fi
exec .venv/bin/python -m pytest "$@"
