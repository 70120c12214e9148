#!/usr/bin/env bash
# Stops what dev/start.sh started, by the pids it recorded: all of them side by side (TERM, then KILL after
# 10 s), so a stop takes as long as the slowest part, not the sum.
#   dev/stop.sh [trainer] [archiver] [gateway] [mlflow] [kafka] [postgres] [minio]      (default: all)
# PostgreSQL gets SIGINT (its "fast" shutdown: SIGTERM would wait for every client to disconnect).
. "$(dirname "$0")/lib.sh"
parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(samples trainer archiver archiver-test gateway-test gateway mlflow kafka postgres minio)
stopping=()
for name in "${parts[@]}"; do
  [[ -f "$PIDS/$name.pid" ]] || continue
  if alive "$name"; then
    pid=$(pid_of "$name")
    log "stopping $name (pid $pid)"
    if [[ $name == postgres ]]; then kill -INT "$pid" 2>/dev/null || true
    else kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; fi
    stopping+=("$name:$pid")
  else
    rm -f "$PIDS/$name.pid"
  fi
done
for _ in $(seq 100); do
  left=()
  for entry in "${stopping[@]}"; do if kill -0 "${entry#*:}" 2>/dev/null; then left+=("$entry"); fi; done
  (( ${#left[@]} )) || break
  sleep 0.1
done
for entry in "${stopping[@]}"; do
  name=${entry%%:*} pid=${entry#*:}
  kill -0 "$pid" 2>/dev/null && { log "$name did not stop, killing"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  rm -f "$PIDS/$name.pid"
done
