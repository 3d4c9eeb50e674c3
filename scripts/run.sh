#!/usr/bin/env bash
# Set everything up and start the console: the emulator (unless COMPOSIO_API_KEY is set),
# the catalog, demo data and accounts, background worker(s) for bulk jobs (BULK_WORKERS, default 1),
# then the web server on http://127.0.0.1:8000.
#
# The emulator keeps its state in var/emulator.sqlite3 (EMULATOR_STATE), so a restart keeps every
# session and connected account. `scripts/run.sh --fresh` (or EMULATOR_FRESH=1) removes that file
# first: the emulator starts empty, and seed_demo renews the demo sessions it no longer knows.
# Demo passwords are kept in var/demo-passwords.json (mode 0600) and printed on every start;
# `--renew-passwords` (or RENEW_PASSWORDS=1) makes new ones.
set -euo pipefail
cd "$(dirname "$0")/.."
fresh=""
renew=""
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    --renew-passwords) renew=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $arg (try --help)" >&2; exit 2 ;;
  esac
done
scripts/bootstrap.sh
PY=.venv/bin/python
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
[ -f .env ] && set -a && . ./.env && set +a
mkdir -p var
[ "${EMULATOR_FRESH:-}" = 1 ] && fresh=1
[ "${RENEW_PASSWORDS:-}" = 1 ] && renew=1

echo "==> Migrating the database"
$PY manage.py migrate --no-input -v0

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [ -z "${COMPOSIO_API_KEY:-}" ]; then
  emulator_url="${COMPOSIO_EMULATOR_URL:-http://127.0.0.1:9900}"
  port="${emulator_url##*:}"
  port="${port%%/*}"
  state="${EMULATOR_STATE:-var/emulator.sqlite3}"
  if [ "$fresh" = 1 ]; then
    echo "==> Starting the emulator clean: removing $state"
    rm -f "$state" "$state-wal" "$state-shm"
  fi
  echo "==> Starting the Composio emulator on $emulator_url (no COMPOSIO_API_KEY set; state in $state)"
  $PY manage.py composio_emulator --port "$port" --state "$state" >var/emulator.log 2>&1 &
  emulator_pid=$!
  pids+=("$emulator_pid")
  for _ in $(seq 1 50); do
    if $PY -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/_emulator/health', timeout=1)" "$emulator_url" 2>/dev/null; then
      break
    fi
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
      echo "The emulator did not start (var/emulator.log):" >&2
      cat var/emulator.log >&2
      echo "scripts/run.sh --fresh starts it with a new state file." >&2
      exit 1
    fi
    sleep 0.2
  done
else
  echo "==> Using real Composio (COMPOSIO_API_KEY is set)"
fi

echo "==> Syncing the toolkit catalog"
$PY manage.py sync_toolkits
echo "==> Demo data and accounts"
seed_args=()
[ "$renew" = 1 ] && seed_args+=(--renew-passwords)
$PY manage.py seed_demo "${seed_args[@]}"

echo "==> Starting ${BULK_WORKERS:-1} background worker(s) for bulk jobs (var/worker-N.log)"
# Jobs interrupted by an earlier stop get fresh runner tasks, so the workers resume them at once.
$PY manage.py bulk_resume
# The workers also anchor the audit chain every AUDIT_HOUSEKEEPING_SECONDS (books it once).
$PY manage.py anchor_audit --schedule
# ...and check the stored sessions against Composio every DRIFT_VERIFY_SECONDS (books it once).
$PY manage.py verify_sessions --schedule
# ...and find the users needing support's attention every ATTENTION_SWEEP_SECONDS (books it once).
$PY manage.py sweep_attention --schedule
for n in $(seq 1 "${BULK_WORKERS:-1}"); do
  $PY manage.py db_worker --no-reload --worker-id "run-sh-$n-$$" >"var/worker-$n.log" 2>&1 &
  pids+=($!)
done

echo "==> Sign-in: MFA and step-up are off in this demo (MFA_REQUIRED defaults to DJANGO_SECURE); the sign-in page says so"
echo "==> Serving the console on http://127.0.0.1:8000 (Ctrl-C stops everything)"
$PY manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
wait "${pids[-1]}"
