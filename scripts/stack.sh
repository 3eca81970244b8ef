#!/usr/bin/env bash
# Local Prefect stack for synthrelease: server on 127.0.0.1 (SQLite in $PREFECT_HOME),
# a process work pool, the deployments of prefect.yaml, and a worker. Idempotent.
#   scripts/stack.sh up | down | status
# Environment: PREFECT_HOME (default ./.prefect), SYNTHRELEASE_PREFECT_PORT (4200),
# SYNTHRELEASE_POOL (local), BIN (./.venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${BIN:-$ROOT/.venv/bin}
PORT=${SYNTHRELEASE_PREFECT_PORT:-4200}
POOL=${SYNTHRELEASE_POOL:-local}
export PREFECT_HOME=${PREFECT_HOME:-$ROOT/.prefect}
export PREFECT_API_URL=http://127.0.0.1:$PORT/api
export PREFECT_SERVER_API_HOST=127.0.0.1 PREFECT_SERVER_API_PORT=$PORT
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export PREFECT_LOGGING_EXTRA_LOGGERS=synthrelease
RUN=$PREFECT_HOME/stack
mkdir -p "$RUN"

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {  # name command...
  local name=$1; shift
  if alive "$name"; then
    echo "$name: already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  setsid "$@" >>"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  echo "$name: started (pid $!, log $RUN/$name.log)"
}

stop() {  # name: TERM the process group, then KILL after 20 s
  local name=$1 pid
  if ! alive "$name"; then rm -f "$RUN/$name.pid"; echo "$name: not running"; return 0; fi
  pid=$(cat "$RUN/$name.pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
  echo "$name: stopped"
}

up() {
  start server "$BIN/prefect" server start --host 127.0.0.1 --port "$PORT"
  "$BIN/prefect" server status --wait --timeout 300 >/dev/null
  "$BIN/prefect" work-pool create "$POOL" --type process --overwrite >/dev/null
  "$BIN/prefect" --no-prompt deploy --all >"$RUN/deploy.log" 2>&1 || { cat "$RUN/deploy.log"; exit 1; }
  start worker "$BIN/prefect" worker start --pool "$POOL"
  echo "stack up: UI http://127.0.0.1:$PORT  (PREFECT_API_URL=$PREFECT_API_URL)"
  echo "run:      $BIN/prefect deployment run release/adult --watch"
}

down() { stop worker; stop server; }

status() {
  for name in server worker; do
    if alive "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
