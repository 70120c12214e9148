#!/usr/bin/env bash
# Stops what dev/start.sh started, by the pids it recorded (TERM, then KILL after 10 s).
#   dev/stop.sh [trainer] [gateway] [mlflow] [kafka] [postgres] [minio]      (default: all)
# PostgreSQL gets SIGINT (its "fast" shutdown: SIGTERM would wait for every client to disconnect).
. "$(dirname "$0")/lib.sh"
parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(samples trainer gateway-test gateway mlflow kafka postgres minio)
for name in "${parts[@]}"; do
  f="$PIDS/$name.pid"
  [[ -f $f ]] || continue
  pid=$(pid_of "$name")
  if alive "$name"; then
    log "stopping $name (pid $pid)"
    if [[ $name == postgres ]]; then kill -INT "$pid" 2>/dev/null || true
    else kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; fi
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop, killing"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  fi
  rm -f "$f"
done
