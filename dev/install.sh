#!/usr/bin/env bash
# Installs every pinned component idempotently into $AFTERDARK_CACHE. A second run only checks stamps (seconds).
#   dev/install.sh                      # all
#   dev/install.sh python go kafka      # what the stack runs (make run); `tools` adds faas-cli (make test)
# The three parts run side by side (pip downloads while Go compiles). Each one's output goes to its log in
# $LOGS (install-<part>.log); the terminal gets one line every 15 s on how far each has got, and on a failure
# the log's last lines and the command to rerun.
. "$(dirname "$0")/lib.sh"

stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

# quietly PART PROGRESS CMD...: run CMD with its output in $LOGS/install-PART.log; PROGRESS (a function given
# that log) says how far it is, every 15 s. On failure it prints the log's tail (unless TAIL=0) and returns 1.
quietly() {
  local part=$1 progress=$2; shift 2
  local logf="$LOGS/install-$part.log" t0=$SECONDS pid
  "$@" >"$logf" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( (SECONDS - t0) % 15 == 0 )); then log "  $part: $($progress "$logf") ($((SECONDS - t0)) s)"; fi
  done
  if wait "$pid"; then log "  $part: done in $((SECONDS - t0)) s"; else
    if [[ ${TAIL:-1} != 0 ]]; then
      tail -n 25 "$logf" >&2
      log "$part failed after $((SECONDS - t0)) s; the whole log is $logf (rerun: make install)"
    fi
    return 1
  fi
}

MINIO_BUILD_PACKAGES=1300
pip_progress() {
  if grep -q '^Installing collected packages' "$1"; then printf 'unpacking the packages into the venv (the last step)'
  else printf '%s packages resolved, %s fetched' "$(grep -c '^Collecting' "$1")" "$(grep -Ec '^ *(Downloading|Using cached)' "$1")"; fi
}
go_progress() {
  local fetched built; fetched=$(grep -c 'go: downloading' "$1"); built=$(grep '^  \[go\]' "$1" | grep -vc 'go: ')
  printf '%s modules fetched, %s packages compiled' "$fetched" "$built"
  # a MinIO build at the pinned version compiles about this many packages (measured), so say how far it is
  if [[ $1 == *install-minio.log ]]; then printf ' of about %s' "$MINIO_BUILD_PACKAGES"; fi
}

install_python() {
  local want; want="$(cat "$ROOT"/requirements-dev.txt "$ROOT"/layers/requirements.txt "$ROOT"/training_job/requirements.txt "$ROOT"/template/python3-afterdark/requirements.txt "$ROOT"/functions/*/requirements.txt | sha256sum | cut -c1-16)"
  if stamp_ok "$VENV/.afterdark-stamp" "$want"; then log "python venv up to date ($VENV)"; return; fi
  command -v python3 >/dev/null || fail "python3 not found"
  python3 -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$PYTHON_MIN'.split('.'))))" || fail "Python >= $PYTHON_MIN needed"
  [[ -x "$VENV/bin/python" ]] || { log "creating venv $VENV"; python3 -m venv "$VENV"; }
  log "installing Python packages (a first install fetches TensorFlow: 1.3 GB installed; log: $LOGS/install-python.log)"
  quietly python pip_progress "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off \
    -r "$ROOT/requirements-dev.txt" || fail "pip could not install the Python packages"
  echo "$want" >"$VENV/.afterdark-stamp"
}

# go_tool BINARY MODULE VERSION: go install MODULE@VERSION into $BIN unless that exact version is there.
# With a 4th argument DIR, builds the version that DIR/go.mod pins (with checksums in DIR/go.sum) instead.
go_tool() {
  local bin=$1 module=$2 version=$3 tooldir=${4:-} st="$BIN/.$1.version"
  if [[ -x "$BIN/$bin" ]] && stamp_ok "$st" "$version"; then log "$bin $version present"; return 0; fi
  command -v go >/dev/null || fail "go not found (Go >= 1.24 needed)"
  log "go install $module@$version (a first build takes minutes; later runs skip it; log: $LOGS/install-$bin.log)"
  local target="$module@$version" dir="$ROOT"
  if [[ -n $tooldir ]]; then target=$module; dir=$tooldir; fi
  quietly "$bin" go_progress go_build "$dir" "$target" || return 1
  echo "$version" >"$st"
}
go_build() { (cd "$1" && GOBIN="$BIN" GOFLAGS="-buildvcs=false" go install -v -trimpath -ldflags="-s -w" "$2" 2>&1 | sed -u 's/^/  [go] /'; exit "${PIPESTATUS[0]}"); }

install_go() {
  go_tool minio "$MINIO_MODULE" "$MINIO_VERSION" || fail "MinIO build failed"
  install_watchdog
}

# faas-cli checks stack.yml and the build contexts (the tests, and you before a deploy); the local stack runs
# without it, so `make run` does not wait for its build.
install_tools() {
  # faas-cli has no semver tags and the module proxy serves no version list for it, so `go install
  # module@version` fails its deprecation lookup: build it from dev/tools (go.mod + go.sum pin it).
  go_tool faas-cli "$FAAS_CLI_MODULE" "$FAAS_CLI_VERSION" "$ROOT/dev/tools" || fail "faas-cli build failed"
}

# of-watchdog: from the release source in OF_WATCHDOG_SRC (a .tar.gz with vendor/; it builds offline) when that
# is set, else `go install` at the pinned pseudo-version. If neither works (the module proxy refuses it on
# these machines), the local gateway runs each function under dev/watchdog.py. See README "of-watchdog".
install_watchdog() {
  if [[ -n "${OF_WATCHDOG_SRC:-}" ]]; then
    [[ -f "$OF_WATCHDOG_SRC" ]] || fail "OF_WATCHDOG_SRC=$OF_WATCHDOG_SRC does not exist"
    local want st="$BIN/.of-watchdog.version" tmp
    want="$OF_WATCHDOG_RELEASE/$(sha256sum "$OF_WATCHDOG_SRC" | cut -c1-16)"
    if [[ -x "$BIN/of-watchdog" ]] && stamp_ok "$st" "$want"; then log "of-watchdog $OF_WATCHDOG_RELEASE present"; return; fi
    command -v go >/dev/null || fail "go not found (Go >= 1.24 needed)"
    log "building of-watchdog $OF_WATCHDOG_RELEASE from $OF_WATCHDOG_SRC (offline, vendored; ~90 s once)"
    tmp="$(mktemp -d)"
    tar -xzf "$OF_WATCHDOG_SRC" -C "$tmp"
    quietly of-watchdog go_progress watchdog_build "$tmp/of-watchdog" || { rm -rf "$tmp"; fail "of-watchdog build failed"; }
    rm -rf "$tmp"
    "$BIN/of-watchdog" --version >/dev/null 2>&1 || true
    echo "$want" >"$st"
    return
  fi
  if [[ -x "$BIN/of-watchdog" ]] && "$BIN/of-watchdog" --version 2>&1 | grep -q "$OF_WATCHDOG_COMMIT"; then
    log "of-watchdog $OF_WATCHDOG_RELEASE present"; return
  fi
  TAIL=0 go_tool of-watchdog "$OF_WATCHDOG_MODULE" "$OF_WATCHDOG_VERSION" \
    || log "WARNING: $OF_WATCHDOG_MODULE@$OF_WATCHDOG_VERSION is not served by the Go module proxy; functions run under dev/watchdog.py (log: $LOGS/install-of-watchdog.log)"
}

watchdog_build() {
  (cd "$1" && CGO_ENABLED=0 go build -v -mod=vendor -trimpath -o "$BIN/of-watchdog" \
     -ldflags "-s -w -X main.Version=$OF_WATCHDOG_RELEASE -X main.GitCommit=$OF_WATCHDOG_COMMIT" . 2>&1 \
     | sed -u 's/^/  [go] /'; exit "${PIPESTATUS[0]}")
}

install_kafka() {
  local want="$KAFKA_VERSION/$SLF4J_VERSION/$LOG4J_VERSION/$(sha256sum "$ROOT/dev/kafka/pom.xml" | cut -c1-12)"
  if stamp_ok "$KAFKA_LIBS/.stamp" "$want"; then log "kafka $KAFKA_VERSION jars present"; return; fi
  command -v mvn >/dev/null || fail "mvn not found"
  command -v java >/dev/null || fail "java not found (Java 17+ needed)"
  log "resolving Kafka $KAFKA_VERSION broker jars from Maven Central"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  quietly kafka maven_progress mvn -B -f "$ROOT/dev/kafka/pom.xml" -Dmaven.repo.local="$AFTERDARK_CACHE/m2" \
      -Dkafka.version="$KAFKA_VERSION" -Dslf4j.version="$SLF4J_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime \
    || fail "mvn could not resolve the Kafka jars"
  echo "$want" >"$KAFKA_LIBS/.stamp"
}

maven_progress() { printf '%s artifacts downloaded' "$(grep -c '^Downloaded from' "$1")"; }

parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(python go kafka tools)
t0=$SECONDS pids=()
for p in "${parts[@]}"; do "install_$p" & pids+=($!); done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
(( failed == 0 )) || fail "install failed (above); rerun: make install"
log "install done ($((SECONDS - t0)) s)"
