#!/usr/bin/env bash
# Two Relaygate replicas sharing Redis (limits, budgets, cooldowns, revocations) and PostgreSQL
# (tokens, request log), without Docker or compose.
#
#   scripts/two-replicas.sh            run the demo, then keep both replicas up until Ctrl-C
#   scripts/two-replicas.sh --check    run the demo, verify it, stop everything, exit 0 (1 on failure)
#   scripts/two-replicas.sh --own      start a private Redis and PostgreSQL even if ones are running
#   scripts/two-replicas.sh --keep     keep the temp dir (configs, logs) afterwards
#
# What it does:
#   1. Redis: uses $REDIS_URL (default redis://127.0.0.1:6379/0) if it answers, else starts
#      `redis-server` on a free port (no persistence) in a temp dir.
#   2. PostgreSQL: uses $PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres) if it
#      answers, else runs `initdb` + `pg_ctl` into the temp dir on a free port (trust auth, as the
#      `postgres` user when run as root). Creates the database $DEMO_DB (default relaygate_demo)
#      if missing and runs `relaygate migrate`.
#   3. Starts two replicas, A and B (ports $PORT_A/$PORT_B; defaults 8081/8082, free ports with
#      --check), with the same --config: examples/quickstart.yaml + examples/limits.yaml.
#   4. Creates one token (for a fresh demo user, so every run starts with empty buckets) and calls
#      A and B in turn: the 5-per-minute rule is shared, so the 6th call gets 429 whichever replica
#      it lands on; then the $1/day budget on mock-priced/echo runs out the same way; then both
#      replicas' calls are listed from the one PostgreSQL request log.
#   5. Stops what it started (replicas; Redis and PostgreSQL only if it started them) on exit,
#      Ctrl-C or error. Services it found running are left alone.
#
# Needs: bash, curl, Python with relaygate installed (`pip install -e .`; $PYTHON, default python3,
# or the interpreter of the `relaygate` command on PATH). Only when none is running: `redis-server`
# (Debian: redis-server) and PostgreSQL's `initdb` and `pg_ctl` (Debian: postgresql; looked up on
# PATH, then /usr/lib/postgresql/*/bin; as root, they run as the `postgres` user).
set -euo pipefail

CHECK=0 OWN=0 KEEP=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK=1 ;;
    --own) OWN=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
DEMO_DB="${DEMO_DB:-relaygate_demo}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/relaygate-two-replicas.XXXXXX")"
PIDS=()          # replicas and a private redis-server
PG_DATA=""       # a private PostgreSQL's data dir (stopped with pg_ctl)
FAILED=0

say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; FAILED=1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$PG_DATA" ]; then as_pg "$PG_CTL" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true; fi
  if [ "$KEEP" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; }; then  # failed: keep the logs
    echo "logs and configs kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The Python that has relaygate (and its redis and psycopg clients, used below for checks).
if ! "$PYTHON" -c 'import relaygate' 2>/dev/null && command -v relaygate >/dev/null 2>&1; then
  interpreter="$(head -1 "$(command -v relaygate)" | sed -n 's/^#!//p')"
  [ -x "$interpreter" ] && PYTHON="$interpreter"
fi
"$PYTHON" -c 'import relaygate' 2>/dev/null || { echo "relaygate is not installed: pip install -e $ROOT" >&2; exit 2; }
RELAYGATE=("$PYTHON" -m relaygate)
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 2; }

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_ok() { "$PYTHON" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=1, socket_connect_timeout=1).ping()' "$1" 2>/dev/null; }
pg_ok() { "$PYTHON" -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=2).close()' "$1" 2>/dev/null; }
pg_bin() {
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
  local found=""
  for candidate in /usr/lib/postgresql/*/bin/"$1"; do [ -x "$candidate" ] && found=$candidate; done
  echo "$found"  # the last in glob order (fine for the usual one installed major version)
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then echo "$what did not come up" >&2; return 1; fi
    sleep 0.1
  done
}

# ------------------------------------------------------------------------------------------- Redis
if [ "$OWN" = 0 ] && redis_ok "$REDIS_URL"; then
  say "Redis: using the one at ${REDIS_URL##*@}"
else
  command -v redis-server >/dev/null || { echo "no Redis answers at $REDIS_URL and redis-server is not installed" >&2; exit 2; }
  port=$(free_port)
  REDIS_URL="redis://127.0.0.1:$port/0"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --dir "$TMP" \
    >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  wait_for 10 "redis-server" redis_ok "$REDIS_URL"
  say "Redis: started redis-server on 127.0.0.1:$port (pid ${PIDS[-1]})"
fi

# -------------------------------------------------------------------------------------- PostgreSQL
if [ "$OWN" = 0 ] && pg_ok "$PG_ADMIN_URL"; then
  say "PostgreSQL: using the one at ${PG_ADMIN_URL##*@}"
else
  INITDB="$(pg_bin initdb)"; PG_CTL="$(pg_bin pg_ctl)"
  if [ -z "$INITDB" ] || [ -z "$PG_CTL" ]; then
    echo "no PostgreSQL answers at $PG_ADMIN_URL and initdb/pg_ctl are not installed" >&2; exit 2
  fi
  port=$(free_port)
  PG_DATA="$TMP/pg/data"
  mkdir -p "$TMP/pg/sock"
  if [ "$(id -u)" = 0 ]; then  # initdb refuses to run as root: the server runs as `postgres`
    id postgres >/dev/null 2>&1 || { echo "running as root needs a 'postgres' user to run initdb" >&2; exit 2; }
    chmod 755 "$TMP"; chown -R postgres "$TMP/pg"
  fi
  as_pg "$INITDB" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; PG_DATA=""; exit 1; }
  as_pg "$PG_CTL" -D "$PG_DATA" -l "$TMP/pg/postgres.log" -w -t 30 \
    -o "-p $port -k $TMP/pg/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  PG_ADMIN_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  say "PostgreSQL: started a private server on 127.0.0.1:$port (data in $PG_DATA)"
fi
"$PYTHON" - "$PG_ADMIN_URL" "$DEMO_DB" <<'EOF'
import sys, psycopg
from psycopg import errors, sql
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    try:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(sys.argv[2])))
        print(f"   created database {sys.argv[2]}")
    except (errors.DuplicateDatabase, errors.UniqueViolation):
        print(f"   database {sys.argv[2]} exists")
EOF
DATABASE_URL="${PG_ADMIN_URL%/*}/$DEMO_DB"
"${RELAYGATE[@]}" migrate --database-url "$DATABASE_URL"

# ---------------------------------------------------------------------------------------- replicas
CONFIG="$TMP/config"
mkdir -p "$CONFIG"
cp "$ROOT/examples/quickstart.yaml" "$ROOT/examples/limits.yaml" "$CONFIG/"
if [ "$CHECK" = 1 ]; then
  PORT_A="${PORT_A:-$(free_port)}"; PORT_B="${PORT_B:-$(free_port)}"
else
  PORT_A="${PORT_A:-8081}"; PORT_B="${PORT_B:-8082}"
fi
for name in A B; do
  port_var="PORT_$name"
  RELAYGATE_CONFIG='' RELAYGATE_DATABASE_URL='' RELAYGATE_REDIS_URL='' \
    "${RELAYGATE[@]}" serve --config "$CONFIG" --host 127.0.0.1 --port "${!port_var}" \
    --database-url "$DATABASE_URL" --redis-url "$REDIS_URL" --log-level warning \
    >"$TMP/replica-$name.log" 2>&1 &
  PIDS+=($!)
done
ready() { curl -fs -o /dev/null "http://127.0.0.1:$1/ready"; }
if ! wait_for 30 "replica A" ready "$PORT_A" || ! wait_for 30 "replica B" ready "$PORT_B"; then
  tail -20 "$TMP"/replica-*.log >&2; exit 1
fi
say "replicas up: A http://127.0.0.1:$PORT_A  B http://127.0.0.1:$PORT_B  (config: quickstart.yaml + limits.yaml)"

DEMO_USER="demo-$(date +%s)-$RANDOM@example.com"
TOKEN="$("${RELAYGATE[@]}" tokens create --user "$DEMO_USER" --name two-replicas --database-url "$DATABASE_URL" | tail -1)"
echo "   token for $DEMO_USER: ${TOKEN:0:16}... (created once, in PostgreSQL; both replicas accept it)"

# call PORT MODEL -> prints the status, retry-after, x-tfy-applied-configurations (and the error) and sets STATUS
call() {
  local port=$1 model=$2 headers="$TMP/headers" body="$TMP/body"
  STATUS=$(curl -s -o "$body" -D "$headers" -w '%{http_code}' "http://127.0.0.1:$port/api/llm/chat/completions" \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    -d "{\"model\": \"$model\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello from the demo\"}], \"max_tokens\": 16}")
  local applied retry
  applied=$(grep -i '^x-tfy-applied-configurations:' "$headers" | cut -d' ' -f2- | tr -d '\r' || true)
  retry=$(grep -i '^retry-after:' "$headers" | cut -d' ' -f2- | tr -d '\r' || true)
  if [ "$STATUS" = 200 ]; then
    printf '   %s %s\n' "$STATUS" "$applied"
  else
    printf '   %s retry-after=%s %s\n       %s\n' "$STATUS" "$retry" "$applied" "$(head -c 300 "$body")"
  fi
}

say "rate limit 'echo-5-per-minute' (5 a minute per user), shared: calls alternate A, B, A, ..."
STATUSES=()
for i in 1 2 3 4 5 6; do
  if [ $((i % 2)) = 1 ]; then port=$PORT_A; name=A; else port=$PORT_B; name=B; fi
  printf '   call %d -> replica %s:' "$i" "$name"
  call "$port" mock/echo
  STATUSES+=("$STATUS")
done
[ "${STATUSES[*]}" = "200 200 200 200 200 429" ] \
  || fail "expected five 200s then 429 across the two replicas, got: ${STATUSES[*]}"
grep -q 'echo-5-per-minute' "$TMP/body" || fail "the 429 does not name rule echo-5-per-minute"

say "budget 'priced-echo-daily' (\$1 a day per user on mock-priced/echo at \$0.01 a token), shared"
BUDGET_CALLS=0
for i in $(seq 1 20); do
  if [ $((i % 2)) = 1 ]; then port=$PORT_A; name=A; else port=$PORT_B; name=B; fi
  printf '   call %d -> replica %s:' "$i" "$name"
  call "$port" mock-priced/echo
  BUDGET_CALLS=$i
  [ "$STATUS" = 200 ] || break
done
if [ "$STATUS" != 429 ] || ! grep -q 'budget_exceeded' "$TMP/body"; then
  fail "expected 429 budget_exceeded once the budget is spent, got $STATUS after $BUDGET_CALLS calls"
elif [ "$BUDGET_CALLS" -lt 3 ]; then
  fail "the budget refused call $BUDGET_CALLS: expected calls on both replicas to spend it first"
fi

say "one request log in PostgreSQL, written by both replicas (relaygate logs --user $DEMO_USER)"
rows=0
for _ in $(seq 1 50); do
  rows=$("${RELAYGATE[@]}" logs --database-url "$DATABASE_URL" --user "$DEMO_USER" --json --limit 100 | grep -c . || true)
  [ "$rows" -ge $((6 + BUDGET_CALLS)) ] && break
  sleep 0.2
done
"${RELAYGATE[@]}" logs --database-url "$DATABASE_URL" --user "$DEMO_USER" --limit 8
[ "$rows" -ge $((6 + BUDGET_CALLS)) ] || fail "expected $((6 + BUDGET_CALLS)) log rows for $DEMO_USER, found $rows"

if [ "$CHECK" = 1 ]; then
  if [ "$FAILED" = 1 ]; then say "check FAILED (logs in $TMP)"; exit 1; fi
  say "check passed: one limit and one budget held across two replicas; one token store and request log"
  exit 0
fi

say "both replicas keep running; try them:"
cat <<EOF
   export RELAYGATE_TOKEN=$TOKEN
   curl -s http://127.0.0.1:$PORT_A/api/llm/chat/completions -H "Authorization: Bearer \$RELAYGATE_TOKEN" \\
     -H "Content-Type: application/json" -d '{"model": "mock/echo", "messages": [{"role": "user", "content": "Hi"}]}'
   (the same on port $PORT_B shares the limit; in a minute the window has room again)
   relaygate logs --database-url $DATABASE_URL
EOF
# Last, from a builtin: a Ctrl-C that arrives while an external command (cat) runs is taken by
# bash as handled by that command and ignored (wait-and-cooperative-exit), so nothing runs after this.
say "Ctrl-C stops everything this script started."
wait
