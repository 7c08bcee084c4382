#!/usr/bin/env bash
# Local servers for the pipeline, all bound to 127.0.0.1, all state inside the project.
#
#   bash infra/scripts/servers.sh up            # prefect-start + pool + deploy + worker-start
#   bash infra/scripts/servers.sh down          # worker-stop + prefect-stop (+ mlflow-stop)
#   bash infra/scripts/servers.sh prefect-start | prefect-stop
#   bash infra/scripts/servers.sh mlflow-start  | mlflow-stop
#   bash infra/scripts/servers.sh pool          # work pool `local` (type process) + limits, idempotent
#   bash infra/scripts/servers.sh pool-k8s      # work pool `gpu-cluster` (kubernetes) from infra/k8s/
#   bash infra/scripts/servers.sh deploy        # pipeline/local + pipeline/nightly (deploy-all: + gpu-cluster)
#   bash infra/scripts/servers.sh worker-start  | worker-stop
#   bash infra/scripts/servers.sh status
#
# Settings (environment): PREFECT_PORT (4200), MLFLOW_PORT (5000), PREFECT_POOL (local),
# POOL_CONCURRENCY (1 flow run at a time; 0 = unlimited),
# PREFECT_HOME (<project>/.prefect), MLFLOW_BACKEND_URI (sqlite:///<project>/mlruns/mlflow.db),
# VENV (<project>/.venv), RUN_DIR (<project>/.run: PID files and logs).
# Processes run in their own session; stop sends SIGTERM to that process group by PID
# (SIGKILL after 20 s). Nothing else is ever signalled.
set -euo pipefail

ROOT="${PROJECT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
VENV="${VENV:-$ROOT/.venv}"
RUN_DIR="${RUN_DIR:-$ROOT/.run}"
PREFECT_PORT="${PREFECT_PORT:-4200}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
POOL="${PREFECT_POOL:-local}"
POOL_CONCURRENCY="${POOL_CONCURRENCY:-1}"
K8S_POOL="${PREFECT_K8S_POOL:-gpu-cluster}"

export PATH="$VENV/bin:$PATH"
export PREFECT_HOME="${PREFECT_HOME:-$ROOT/.prefect}"
export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:$PREFECT_PORT/api}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 DVC_NO_ANALYTICS=1
export MLFLOW_DISABLE_TELEMETRY=true GX_ANALYTICS_ENABLED=false
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$ROOT/mlruns/mlflow.db}"
export VITDET_MLFLOW_UI_URL="${VITDET_MLFLOW_UI_URL:-http://127.0.0.1:$MLFLOW_PORT}"
MLFLOW_BACKEND_URI="${MLFLOW_BACKEND_URI:-$MLFLOW_TRACKING_URI}"

say() { printf '\033[1m[servers]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[servers]\033[0m %s\n' "$*" >&2; exit 1; }

pid_of() {  # print the PID recorded for service $1 if that process is alive
  local f="$RUN_DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
  rm -f "$f"; return 1
}

launch() {  # launch NAME CMD...: background process in its own session, PID file, log file
  local name="$1"; shift
  mkdir -p "$RUN_DIR"
  if pid="$(pid_of "$name")"; then say "$name already running (pid $pid)"; return 0; fi
  (cd "$ROOT" && exec setsid "$@" >"$RUN_DIR/$name.log" 2>&1 < /dev/null) &
  echo $! > "$RUN_DIR/$name.pid"
  say "$name started (pid $!, log $RUN_DIR/$name.log)"
}

stop() {  # stop NAME: SIGTERM the process group recorded in the PID file, SIGKILL after 20 s
  local name="$1" pid
  if ! pid="$(pid_of "$name")"; then say "$name not running"; return 0; fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not exit after SIGTERM: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
  say "$name stopped (pid $pid)"
}

wait_http() {  # wait_http NAME URL TIMEOUT PIDNAME
  local name="$1" url="$2" timeout="$3"
  for _ in $(seq 1 $((timeout * 2))); do
    if python - "$url" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
EOF
    pid_of "$4" >/dev/null || die "$name exited during startup; see $RUN_DIR/$4.log"
    sleep 0.5
  done
  die "$name not healthy after ${timeout}s at $url; see $RUN_DIR/$4.log"
}

api_up() {
  python - "$PREFECT_API_URL/health" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
EOF
}

need_api() { api_up || die "no Prefect API at $PREFECT_API_URL: run '$0 prefect-start' first"; }

cmd_prefect_start() {
  mkdir -p "$PREFECT_HOME"
  launch prefect-server prefect server start --host 127.0.0.1 --port "$PREFECT_PORT" --analytics-off
  wait_http "Prefect server" "http://127.0.0.1:$PREFECT_PORT/api/health" 90 prefect-server
  say "Prefect UI: http://127.0.0.1:$PREFECT_PORT   (PREFECT_API_URL=$PREFECT_API_URL)"
}

cmd_mlflow_start() {
  mkdir -p "$ROOT/mlruns"
  # Job execution off: otherwise the server starts ~7 job-runner processes (~2 GB).
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false launch mlflow-server \
    mlflow server --backend-store-uri "$MLFLOW_BACKEND_URI" --host 127.0.0.1 \
    --port "$MLFLOW_PORT" --workers 1
  wait_http "MLflow server" "http://127.0.0.1:$MLFLOW_PORT/health" 120 mlflow-server
  say "MLflow UI: http://127.0.0.1:$MLFLOW_PORT   (store $MLFLOW_BACKEND_URI)"
}

cmd_pool() {
  need_api
  if prefect work-pool inspect "$POOL" >/dev/null 2>&1; then
    say "work pool '$POOL' exists"
  else
    prefect work-pool create "$POOL" --type process
  fi
  # One flow run at a time on this machine (a training run uses every core); 0 = unlimited.
  if [[ "$POOL_CONCURRENCY" != 0 ]]; then
    prefect work-pool set-concurrency-limit "$POOL" "$POOL_CONCURRENCY" >/dev/null
  fi
  # The promotion gate assumes one registry writer: tasks tagged vitdet-registry run one at a time.
  prefect concurrency-limit inspect vitdet-registry >/dev/null 2>&1 \
    || prefect concurrency-limit create vitdet-registry 1 >/dev/null
  say "work pool '$POOL' (concurrency ${POOL_CONCURRENCY/#0/unlimited}), registry tag limit 1"
}

cmd_pool_k8s() {
  need_api
  # --overwrite keeps the pool in step with infra/k8s/base-job-template.json
  prefect work-pool create "$K8S_POOL" --type kubernetes \
    --base-job-template "$ROOT/infra/k8s/base-job-template.json" --overwrite
}

cmd_deploy() {
  need_api; cmd_pool
  (cd "$ROOT" && prefect --no-prompt deploy --name pipeline/local --name pipeline/nightly)
}

cmd_deploy_all() {
  need_api; cmd_pool; cmd_pool_k8s
  (cd "$ROOT" && prefect --no-prompt deploy --all)
}

cmd_worker_start() {
  need_api
  launch prefect-worker prefect worker start --pool "$POOL" --type process
  sleep 1; pid_of prefect-worker >/dev/null || die "worker exited; see $RUN_DIR/prefect-worker.log"
  say "worker polling pool '$POOL'"
}

cmd_status() {
  local name pid
  for name in prefect-server prefect-worker mlflow-server; do
    if pid="$(pid_of "$name")"; then say "$name: running (pid $pid)"; else say "$name: stopped"; fi
  done
  if api_up; then say "Prefect API: $PREFECT_API_URL (healthy); UI http://127.0.0.1:$PREFECT_PORT"
  else say "Prefect API: $PREFECT_API_URL (unreachable)"; fi
  say "MLflow UI: $VITDET_MLFLOW_UI_URL   store: $MLFLOW_BACKEND_URI"
}

case "${1:-help}" in
  prefect-start) cmd_prefect_start ;;
  prefect-stop)  stop prefect-server ;;
  mlflow-start)  cmd_mlflow_start ;;
  mlflow-stop)   stop mlflow-server ;;
  pool)          cmd_pool ;;
  pool-k8s)      cmd_pool_k8s ;;
  deploy)        cmd_deploy ;;
  deploy-all)    cmd_deploy_all ;;
  worker-start)  cmd_worker_start ;;
  worker-stop)   stop prefect-worker ;;
  status)        cmd_status ;;
  up)            cmd_prefect_start; cmd_deploy; cmd_worker_start
                 say "run: PREFECT_API_URL=$PREFECT_API_URL prefect deployment run 'pipeline/local' --watch" ;;
  down)          stop prefect-worker; stop prefect-server; stop mlflow-server ;;
  help|-h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (try: $0 help)" ;;
esac
