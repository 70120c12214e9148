#!/usr/bin/env bash
# make test: starts the services that are not running, runs pytest against them, and stops only what it started.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
started=()
for svc in minio kafka gateway; do alive "$svc" || started+=("$svc"); done
cleanup() { (( ${#started[@]} )) && "$ROOT/dev/stop.sh" "${started[@]}" || true; }
trap cleanup EXIT
"$ROOT/dev/start.sh" minio kafka gateway
export PYTHONPATH="$ROOT"
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
# pytest exit 5 = no tests collected: that is a failure here, never a silent pass.
if (( rc == 5 )); then log "pytest collected no tests"; exit 1; fi
exit $rc
