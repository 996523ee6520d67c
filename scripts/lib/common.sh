# Shared by scripts/test and scripts/demo: install what is missing, start and stop services.
# Everything started here is registered with `on_exit` and stopped when the script ends,
# whether it succeeds, fails or is interrupted.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLEANUPS=()

# A phase line: the clock, the time since the script started, the time the previous phase
# took, and what starts now — so a slow first run shows where its minutes go.
STARTED_AT=${STARTED_AT:-$SECONDS}
PHASE_AT=$SECONDS
log() {
    printf '\033[1m==> %s +%ds (previous step %ds) %s\033[0m\n' "$(date +%H:%M:%S)" \
        "$((SECONDS - STARTED_AT))" "$((SECONDS - PHASE_AT))" "$*" >&2
    PHASE_AT=$SECONDS
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

on_exit() { CLEANUPS+=("$1"); }
run_cleanups() {
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" || true; done
    CLEANUPS=()
}
trap run_cleanups EXIT
trap 'echo "interrupted: stopping everything this script started" >&2; exit 130' INT
trap 'exit 143' TERM

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests and the demo use, installed only when missing.
DEB_PACKAGES=(postgresql libpq-dev tigervnc-standalone-server tigervnc-tools xterm x11-apps xclip
    chromium fonts-dejavu-core openssl curl docker.io debootstrap haproxy python3-prometheus-client python3-venv)

ensure_packages() {
    local missing=() pkg
    for pkg in "${DEB_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}

# noVNC for the viewer and playwright-core for the browser tests, exactly as locked.
ensure_node_modules() {
    local dir
    for dir in static browser-tests; do
        [ -f "$ROOT/$dir/package-lock.json" ] || continue
        if [ ! -d "$ROOT/$dir/node_modules" ] \
            || ! cmp -s "$ROOT/$dir/package-lock.json" "$ROOT/$dir/node_modules/.package-lock.json.copy"; then
            log "npm ci in $dir"
            (cd "$ROOT/$dir" && npm ci --no-audit --no-fund --loglevel=error)
            cp "$ROOT/$dir/package-lock.json" "$ROOT/$dir/node_modules/.package-lock.json.copy"
        fi
    done
}

# Prints a field of the JSON on stdin: json '["credential"]["token"]'.
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a throwaway Postgres on a free port and exports DATABASE_URL. Initdb refuses to
# run as root, hence the postgres user; the data lives in a temp dir removed at exit.
# POSTGRES_FSYNC=on for figures as a production server would give them (tests run without).
start_postgres() {
    local pgbin dir port run=()
    pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [ -x "$pgbin/initdb" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
    dir="$(mktemp -d /tmp/streamspace-pg.XXXXXX)"
    port="$(free_port)"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
        run=(runuser -u postgres --)
    fi
    on_exit "${run[*]} $pgbin/pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1; rm -rf $dir"
    "${run[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; die "initdb failed"; }
    "${run[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
        "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${POSTGRES_FSYNC:-off} -c max_connections=300" \
        start >/dev/null || { cat "$dir/log"; die "postgres did not start"; }
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    log "postgres on 127.0.0.1:$port"
}

# A real Kubernetes control plane (built from Go modules on first use, see
# scripts/kube-cluster) for the whole run; exports KUBE_CLUSTER_DIR, K8S_BIN and
# STREAMSPACE_TEST_KUBECONFIG, the cluster admin's kubeconfig. Returns non-zero, having said
# why, when it cannot be had (no Go, or a failed start).
start_kube_cluster() {
    source "$ROOT/scripts/lib/kubernetes.sh"
    k8s_ensure_built || return 1
    KUBE_CLUSTER_DIR="$(mktemp -d /tmp/streamspace-kube.XXXXXX)"
    # Its own process group: Ctrl-C reaches the calling script, whose cleanup stops it.
    setsid "$ROOT/scripts/kube-cluster" up "$KUBE_CLUSTER_DIR/cluster" "$$" &
    local pid=$!
    on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $KUBE_CLUSTER_DIR"
    while [ ! -f "$KUBE_CLUSTER_DIR/cluster/ready" ]; do
        kill -0 "$pid" 2>/dev/null || { echo "error: the Kubernetes test cluster did not start" >&2; return 1; }
        sleep 0.2
    done
    export K8S_BIN STREAMSPACE_TEST_KUBECONFIG="$KUBE_CLUSTER_DIR/cluster/kubeconfig"
}

# A private Docker engine (scripts/docker-engine) with the desktop image built on it, for the
# whole run. Begun in the background (the first build takes a couple of minutes) so other
# things start meanwhile; wait_docker_engine exports STREAMSPACE_TEST_DOCKER_HOST,
# STREAMSPACE_TEST_DESKTOP_IMAGE and DOCKER_HOST once it is up.
begin_docker_engine() {
    DOCKER_ENGINE_DIR="$(mktemp -d /tmp/streamspace-docker.XXXXXX)"
    # Its own process group: Ctrl-C reaches the calling script, whose cleanup stops it.
    setsid "$ROOT/scripts/docker-engine" up "$DOCKER_ENGINE_DIR/engine" "$$" &
    DOCKER_ENGINE_PID=$!
    on_exit "kill $DOCKER_ENGINE_PID 2>/dev/null; wait $DOCKER_ENGINE_PID 2>/dev/null; rm -rf $DOCKER_ENGINE_DIR"
}

wait_docker_engine() {
    while [ ! -f "$DOCKER_ENGINE_DIR/engine/ready" ]; do
        kill -0 "$DOCKER_ENGINE_PID" 2>/dev/null || { echo "error: the Docker engine did not start (see above)" >&2; return 1; }
        sleep 0.2
    done
    local env="$DOCKER_ENGINE_DIR/engine/env"
    DOCKER_HOST="$(sed -n 's/^DOCKER_HOST=//p' "$env")"
    DESKTOP_IMAGE="$(sed -n 's/^DESKTOP_IMAGE=//p' "$env")"
    export DOCKER_HOST DESKTOP_IMAGE STREAMSPACE_TEST_DOCKER_HOST="$DOCKER_HOST" \
        STREAMSPACE_TEST_DESKTOP_IMAGE="$DESKTOP_IMAGE"
}

# cargo-fuzz drives libFuzzer, which needs Rust nightly (the machines this project is built on
# have it next to stable; rustup cannot download it where only package registries are reachable).
CARGO_FUZZ_VERSION=0.13.2

ensure_cargo_fuzz() {
    cargo +nightly --version >/dev/null 2>&1 \
        || die "fuzzing needs the Rust nightly toolchain: rustup toolchain install nightly"
    if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
        log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked --quiet
    fi
}
