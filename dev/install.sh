#!/usr/bin/env bash
# Installs every pinned component idempotently into $AFTERDARK_CACHE. A second run only checks stamps (seconds).
#   dev/install.sh            # all
#   dev/install.sh python go kafka
. "$(dirname "$0")/lib.sh"

stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

install_python() {
  local want; want="$(cat "$ROOT"/requirements-dev.txt "$ROOT"/layers/requirements.txt "$ROOT"/training_job/requirements.txt "$ROOT"/template/python3-afterdark/requirements.txt "$ROOT"/functions/*/requirements.txt | sha256sum | cut -c1-16)"
  if stamp_ok "$VENV/.afterdark-stamp" "$want"; then log "python venv up to date ($VENV)"; return; fi
  command -v python3 >/dev/null || fail "python3 not found"
  python3 -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$PYTHON_MIN'.split('.'))))" || fail "Python >= $PYTHON_MIN needed"
  [[ -x "$VENV/bin/python" ]] || { log "creating venv $VENV"; python3 -m venv "$VENV"; }
  log "installing Python packages (TensorFlow is ~1.5 GB on a first install; pip shows progress)"
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar on -r "$ROOT/requirements-dev.txt"
  echo "$want" >"$VENV/.afterdark-stamp"
}

# go_tool BINARY MODULE VERSION: go install MODULE@VERSION into $BIN unless that exact version is there.
# With a 4th argument DIR, builds the version that DIR/go.mod pins (with checksums in DIR/go.sum) instead.
go_tool() {
  local bin=$1 module=$2 version=$3 tooldir=${4:-} st="$BIN/.$1.version"
  if [[ -x "$BIN/$bin" ]] && stamp_ok "$st" "$version"; then log "$bin $version present"; return 0; fi
  command -v go >/dev/null || fail "go not found (Go >= 1.24 needed)"
  log "go install $module@$version (a first build takes minutes; later runs skip it)"
  local target="$module@$version" dir="$ROOT"
  if [[ -n $tooldir ]]; then target=$module; dir=$tooldir; fi
  if (cd "$dir" && GOBIN="$BIN" GOFLAGS="-buildvcs=false" go install -v "$target" 2>&1 | sed -u 's/^/  [go] /' >&2); then
    echo "$version" >"$st"
  else
    return 1
  fi
}

install_go() {
  go_tool minio "$MINIO_MODULE" "$MINIO_VERSION" || fail "MinIO build failed"
  # faas-cli has no semver tags and the module proxy serves no version list for it, so `go install
  # module@version` fails its deprecation lookup: build it from dev/tools (go.mod + go.sum pin it).
  go_tool faas-cli "$FAAS_CLI_MODULE" "$FAAS_CLI_VERSION" "$ROOT/dev/tools" || fail "faas-cli build failed"
  install_watchdog
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
    (cd "$tmp/of-watchdog" && CGO_ENABLED=0 go build -mod=vendor -trimpath -o "$BIN/of-watchdog" \
        -ldflags "-s -w -X main.Version=$OF_WATCHDOG_RELEASE -X main.GitCommit=$OF_WATCHDOG_COMMIT" . 2>&1 \
        | sed -u 's/^/  [go] /' >&2) || { rm -rf "$tmp"; fail "of-watchdog build failed"; }
    rm -rf "$tmp"
    "$BIN/of-watchdog" --version >/dev/null 2>&1 || true
    echo "$want" >"$st"
    return
  fi
  if [[ -x "$BIN/of-watchdog" ]] && "$BIN/of-watchdog" --version 2>&1 | grep -q "$OF_WATCHDOG_COMMIT"; then
    log "of-watchdog $OF_WATCHDOG_RELEASE present"; return
  fi
  go_tool of-watchdog "$OF_WATCHDOG_MODULE" "$OF_WATCHDOG_VERSION" \
    || log "WARNING: $OF_WATCHDOG_MODULE@$OF_WATCHDOG_VERSION is not served by the Go module proxy; functions run under dev/watchdog.py"
}

install_kafka() {
  local want="$KAFKA_VERSION/$SLF4J_VERSION/$LOG4J_VERSION/$(sha256sum "$ROOT/dev/kafka/pom.xml" | cut -c1-12)"
  if stamp_ok "$KAFKA_LIBS/.stamp" "$want"; then log "kafka $KAFKA_VERSION jars present"; return; fi
  command -v mvn >/dev/null || fail "mvn not found"
  command -v java >/dev/null || fail "java not found (Java 17+ needed)"
  log "resolving Kafka $KAFKA_VERSION broker jars from Maven Central"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  mvn -B -q -f "$ROOT/dev/kafka/pom.xml" -Dmaven.repo.local="$AFTERDARK_CACHE/m2" \
      -Dkafka.version="$KAFKA_VERSION" -Dslf4j.version="$SLF4J_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >&2 \
    || fail "mvn could not resolve the Kafka jars"
  echo "$want" >"$KAFKA_LIBS/.stamp"
}

parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(python go kafka)
for p in "${parts[@]}"; do "install_$p"; done
log "install done"
