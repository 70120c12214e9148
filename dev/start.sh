#!/usr/bin/env bash
# Starts the local stack idempotently and waits on each health check:
#   dev/start.sh [minio] [kafka] [gateway]      (default: all three)
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
        -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid)" --ignore-formatted >&2 || fail "kafka storage format failed"
    fi
    log "starting Kafka $KAFKA_VERSION (KRaft) on $KAFKA_BOOTSTRAP"
    KAFKA_LOG_DIR="$dir" spawn kafka java -Xms256m -Xmx768m -XX:+UseG1GC \
      -Dlog4j2.configurationFile="$ROOT/dev/kafka/log4j2.yaml" -cp "$cp" kafka.Kafka "$dir/server.properties"
  fi
  wait_for kafka 90 "$VENV/bin/python" -m layers.events ensure-topics
  log "Kafka ready, topics: $(for t in $KAFKA_TOPICS; do printf '%s ' "${KAFKA_TOPIC_PREFIX:-}$t"; done)"
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
}

cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(minio kafka gateway)
for p in "${parts[@]}"; do "start_$p"; done
