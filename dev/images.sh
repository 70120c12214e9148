#!/usr/bin/env bash
# make images: every function's image and the trainer's, built here with no container registry at all.
#   dev/images.sh [docker|base|watchdog|wheels|functions|trainer|sizes]...     (default: all, in that order)
#
#   docker     Debian's docker.io (pinned in versions.env), installed when missing (root), and a dockerd of our
#              own when none answers: --iptables=false --bridge=none, its data under $AFTERDARK_CACHE/docker.
#   base       afterdark/bookworm-python: Debian bookworm minbase with Debian's Python 3.11 and its venv module,
#              made by debootstrap and `docker import`. Reproducible by its package list: dev/images/
#              bookworm-python.lock pins every package's version; a build whose archive gives other versions
#              stops and says so (IMAGES_UPDATE_LOCK=1 takes the new versions and rewrites the lock).
#   watchdog   afterdark/of-watchdog:<version>: FROM scratch, the of-watchdog binary that dev/install.sh built
#              from its release source.
#   wheels     a wheelhouse of every pinned package, downloaded on this machine (no build step reaches PyPI).
#   functions  `faas-cli build -f stack.yml` with the base images and the wheelhouse as build arguments.
#   trainer    the trainer's image (training_job/Dockerfile) the same way.
#   sizes      every image's size against its budget; written to $RUN/images.json for bench/images.py.
# Images are tagged as stack.yml names them (REGISTRY, TAG) and afterdark/training-job:$TAG.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
export PATH="/usr/bin:$PATH"        # Debian's docker client, matched to its daemon (not a newer one in /usr/local)
export DOCKER_BUILDKIT=0            # the classic builder: Debian's docker.io ships no buildx
IMAGES="$AFTERDARK_CACHE/images"
LOCK="$ROOT/dev/images/bookworm-python.lock"
BASE_IMAGE="afterdark/bookworm-python:$(sha256sum "$LOCK" 2>/dev/null | cut -c1-12 || echo unlocked)"
WATCHDOG_IMAGE="afterdark/of-watchdog:$OF_WATCHDOG_RELEASE"
TAG="${TAG:-dev}"
WHEELS="$AFTERDARK_CACHE/wheels"
mkdir -p "$IMAGES" "$WHEELS"
timed() { local t0=$SECONDS; "$@"; echo "${1#images_} $((SECONDS - t0))" >>"$RUN/images.times"; }
# logged NAME CMD...: CMD's output in $LOGS/images-NAME.log; on failure its tail is printed and 1 returned.
logged() {
  local name=$1; shift
  "$@" >"$LOGS/images-$name.log" 2>&1 || { tail -n 25 "$LOGS/images-$name.log" >&2; log "log: $LOGS/images-$name.log"; return 1; }
}

docker_ready() { docker info >/dev/null 2>&1; }

images_docker() {
  if ! command -v dockerd >/dev/null; then
    [[ $(id -u) == 0 ]] || fail "Docker is not installed, and installing it needs root (apt-get install docker.io)"
    log "installing Debian's docker.io $DOCKER_IO_VERSION"
    # a fresh machine may not have the package lists yet
    apt-cache show "docker.io=$DOCKER_IO_VERSION" >/dev/null 2>&1 || logged apt-update apt-get update -q \
      || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive logged apt apt-get install -y -q \
      "docker.io=$DOCKER_IO_VERSION" "debootstrap=$DEBOOTSTRAP_VERSION" || fail "could not install docker.io"
  fi
  command -v debootstrap >/dev/null || { { apt-cache show "debootstrap=$DEBOOTSTRAP_VERSION" >/dev/null 2>&1 \
    || logged apt-update apt-get update -q; } && DEBIAN_FRONTEND=noninteractive logged apt \
    apt-get install -y -q "debootstrap=$DEBOOTSTRAP_VERSION" || fail "could not install debootstrap"; }
  if ! docker_ready; then
    alive dockerd && fail "dockerd runs (pid $(pid_of dockerd)) but does not answer; see $LOGS/dockerd.log"
    log "starting dockerd (--iptables=false --bridge=none; data in $AFTERDARK_CACHE/docker)"
    spawn dockerd dockerd --iptables=false --bridge=none --data-root "$AFTERDARK_CACHE/docker"
    wait_for dockerd 60 docker info
  fi
  log "Docker ready: $(docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}')"
}

images_base() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && [[ -z ${IMAGES_UPDATE_LOCK:-} ]]; then
    log "base image $BASE_IMAGE present"; return
  fi
  local rootfs="$IMAGES/rootfs-bookworm" have
  rm -rf "$rootfs"
  log "debootstrap: Debian $DEBIAN_SUITE minbase with python3 and python3-venv (about 45 s)"
  logged debootstrap debootstrap --variant=minbase --include=python3,python3-venv "$DEBIAN_SUITE" "$rootfs" \
    "$DEBIAN_MIRROR" || fail "debootstrap failed"
  have="$(chroot "$rootfs" dpkg-query -W -f '${Package}=${Version}\n' | sort)"
  if [[ -f $LOCK && -z ${IMAGES_UPDATE_LOCK:-} ]] && [[ "$have" != "$(grep -v '^#' "$LOCK")" ]]; then
    diff <(grep -v '^#' "$LOCK") <(echo "$have") >&2 || true
    fail "the archive's packages differ from $LOCK (above); IMAGES_UPDATE_LOCK=1 make images takes them"
  fi
  if [[ ! -f $LOCK || -n ${IMAGES_UPDATE_LOCK:-} ]]; then
    { echo "# Every package of afterdark/bookworm-python (dev/images.sh base), from $DEBIAN_MIRROR $DEBIAN_SUITE, $(date -u +%F)"; echo "$have"; } >"$LOCK"
    BASE_IMAGE="afterdark/bookworm-python:$(sha256sum "$LOCK" | cut -c1-12)"
    log "wrote $LOCK ($(echo "$have" | wc -l) packages)"
  fi
  # what an image needs no copy of: apt's lists and caches, documentation, manuals, translations
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/info/* "$rootfs"/var/log/*
  find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
  tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null || fail "docker import failed"
  rm -rf "$rootfs"
  log "base image $BASE_IMAGE: $(docker run --rm --network none "$BASE_IMAGE" python3 --version)"
}

images_watchdog() {
  [[ -x $BIN/of-watchdog ]] || "$ROOT/dev/install.sh" watchdog
  [[ -x $BIN/of-watchdog ]] || fail "of-watchdog is not built (set OF_WATCHDOG_SRC to its release source; README)"
  local ctx="$IMAGES/watchdog"
  mkdir -p "$ctx"
  cp "$BIN/of-watchdog" "$ctx/fwatchdog"
  printf 'FROM scratch\nCOPY fwatchdog /fwatchdog\nENTRYPOINT ["/fwatchdog"]\n' >"$ctx/Dockerfile"
  docker build -q -t "$WATCHDOG_IMAGE" "$ctx" >/dev/null || fail "could not build $WATCHDOG_IMAGE"
  log "watchdog image $WATCHDOG_IMAGE"
}

images_wheels() {
  local files=(layers/requirements.txt template/python3-afterdark/requirements.txt functions/*/requirements.txt)
  local reqs=() f want stamp="$WHEELS/.requirements"
  for f in "${files[@]}"; do reqs+=(-r "$f"); done
  want="$(cat "${files[@]}" training_job/requirements.txt | sha256sum | cut -c1-16)"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then log "wheelhouse present ($WHEELS)"; return; fi
  log "wheelhouse: the functions' and the trainer's pinned packages ($WHEELS)"
  logged wheels "$VENV/bin/pip" download --only-binary=:all: -d "$WHEELS/functions" "${reqs[@]}" \
    || fail "could not download the functions' wheels"
  logged wheels-trainer "$VENV/bin/pip" download --only-binary=:all: -d "$WHEELS/trainer" \
    -r training_job/requirements.txt || fail "could not download the trainer's wheels"
  echo "$want" >"$stamp"
}

# the build arguments that point both Dockerfiles at what was made here
build_args() {
  printf '%s\n' --build-arg "PYTHON_IMAGE=$BASE_IMAGE" --build-arg "WATCHDOG_IMAGE=$WATCHDOG_IMAGE" \
    --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/tmp/wheels
}

images_functions() {
  # faas-cli copies extra paths into each build context only from inside the project: a hard-linked copy
  # of the wheelhouse, removed afterwards (wheels/ is ignored by git).
  rm -rf "$ROOT/wheels" && cp -al "$WHEELS/functions" "$ROOT/wheels"
  local args; mapfile -t args < <(build_args)
  log "faas-cli build -f stack.yml (every function, on $BASE_IMAGE)"
  TAG="$TAG" "$BIN/faas-cli" build -f stack.yml "${args[@]}" --copy-extra wheels --parallel 2 >"$LOGS/images-functions.log" 2>&1 \
    || { rm -rf "$ROOT/wheels"; tail -n 30 "$LOGS/images-functions.log" >&2; fail "faas-cli build failed (log: $LOGS/images-functions.log)"; }
  rm -rf "$ROOT/wheels"
  log "functions built: $(function_images | tr '\n' ' ')"
}

images_trainer() {
  local ctx="$IMAGES/trainer-context" args
  rm -rf "$ctx" && mkdir -p "$ctx/training_job"
  cp -r layers portraits "$ctx/" && cp -r training_job/. "$ctx/training_job/" && cp -al "$WHEELS/trainer" "$ctx/wheels"
  find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
  mapfile -t args < <(build_args)
  log "docker build the trainer ($TRAINER_IMAGE, on $BASE_IMAGE)"
  docker build -f "$ctx/training_job/Dockerfile" -t "$TRAINER_IMAGE" "${args[@]}" "$ctx" >"$LOGS/images-trainer.log" 2>&1 \
    || { tail -n 30 "$LOGS/images-trainer.log" >&2; fail "the trainer's build failed (log: $LOGS/images-trainer.log)"; }
  rm -rf "$ctx"
}

function_images() { "$VENV/bin/python" -c '
import os, sys, yaml
sys.path.insert(0, "dev"); from gateway import envsubst
stack = yaml.safe_load(envsubst(open("stack.yml").read(), dict(os.environ)))
print("\n".join(fn["image"] for fn in stack["functions"].values()))'; }

images_sizes() {
  { echo "{"; echo "  \"base\": $(docker image inspect -f '{{.Size}}' "$BASE_IMAGE"),"
    echo "  \"watchdog\": $(docker image inspect -f '{{.Size}}' "$WATCHDOG_IMAGE"),"
    echo "  \"trainer\": {\"$TRAINER_IMAGE\": $(docker image inspect -f '{{.Size}}' "$TRAINER_IMAGE")},"
    echo "  \"functions\": {"
    local first=1 img
    while read -r img; do
      (( first )) || echo ","
      first=0
      printf '    "%s": %s' "$img" "$(docker image inspect -f '{{.Size}}' "$img")"
    done < <(function_images)
    echo; echo "  },"
    echo "  \"seconds\": {$(awk '{printf "%s\"%s\": %s", (NR>1?", ":""), $1, $2}' "$RUN/images.times")}"
    echo "}"; } >"$RUN/images.json"
  docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "afterdark|slack-after-dark" | sed 's/^/  /' >&2
}

parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(docker base watchdog wheels functions trainer sizes)
[[ " ${parts[*]} " == *" docker "* ]] && rm -f "$RUN/images.times"
for part in "${parts[@]}"; do timed "images_$part"; done
