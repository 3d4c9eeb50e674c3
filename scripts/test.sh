#!/usr/bin/env bash
# Set up and run the test suite (SQLite by default; DATABASE_URL=postgres://... for PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
