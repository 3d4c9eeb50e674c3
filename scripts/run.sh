#!/usr/bin/env bash
# Set everything up and start the console: the emulator (unless COMPOSIO_API_KEY is set),
# the catalog, demo data and accounts, background worker(s) for bulk jobs (BULK_WORKERS, default 1),
# then the web server on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
PY=.venv/bin/python
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
[ -f .env ] && set -a && . ./.env && set +a
mkdir -p var

echo "==> Migrating the database"
$PY manage.py migrate --no-input -v0

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [ -z "${COMPOSIO_API_KEY:-}" ]; then
  emulator_url="${COMPOSIO_EMULATOR_URL:-http://127.0.0.1:9900}"
  port="${emulator_url##*:}"
  port="${port%%/*}"
  echo "==> Starting the Composio emulator on $emulator_url (no COMPOSIO_API_KEY set)"
  $PY manage.py composio_emulator --port "$port" >var/emulator.log 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do
    if $PY -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/_emulator/health', timeout=1)" "$emulator_url" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
else
  echo "==> Using real Composio (COMPOSIO_API_KEY is set)"
fi

echo "==> Syncing the toolkit catalog"
$PY manage.py sync_toolkits
echo "==> Demo data and accounts"
$PY manage.py seed_demo

echo "==> Starting ${BULK_WORKERS:-1} background worker(s) for bulk jobs (var/worker-N.log)"
# Jobs interrupted by an earlier stop get fresh runner tasks, so the workers resume them at once.
$PY manage.py bulk_resume
# The workers also anchor the audit chain every AUDIT_HOUSEKEEPING_SECONDS (books it once).
$PY manage.py anchor_audit --schedule
for n in $(seq 1 "${BULK_WORKERS:-1}"); do
  $PY manage.py db_worker --no-reload --worker-id "run-sh-$n-$$" >"var/worker-$n.log" 2>&1 &
  pids+=($!)
done

echo "==> Serving the console on http://127.0.0.1:8000 (Ctrl-C stops everything)"
$PY manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
wait "${pids[-1]}"
