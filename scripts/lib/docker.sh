# A private Docker engine and the images StreamSpace runs on it, built without a registry.
# Sourced by scripts/docker-engine; needs dockerd, the docker client and debootstrap
# (Debian's docker.io and debootstrap packages) and root (dockerd needs it).

DOCKER_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/streamspace/docker"
# Debian's mirror, as this machine's apt is configured (no image registry is needed).
DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE=streamspace/debian-base:bookworm
DESKTOP_IMAGE=streamspace/desktop:1

docker_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The root filesystem of Debian bookworm (minbase), made once by debootstrap and kept as a
# tarball in the cache; the stand-in for the official debian:bookworm-slim image.
docker_base_tarball() {
    local tarball="$DOCKER_CACHE/debian-bookworm-minbase.tar" root started=$SECONDS
    if [ ! -s "$tarball" ]; then
        docker_log "building a Debian bookworm base image with debootstrap from $DEBIAN_MIRROR (once; about 2 minutes)"
        mkdir -p "$DOCKER_CACHE"
        root="$(mktemp -d "$DOCKER_CACHE/rootfs.XXXXXX")"
        debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" 2>&1 \
            | sed -u -n 's/^I: \(Retrieving\|Installing\|Configuring\|Base\)/    \1/p' | awk 'NR % 20 == 1' >&2 \
            || { rm -rf "$root"; return 1; }
        [ -x "$root/usr/bin/apt-get" ] || { rm -rf "$root"; echo "error: debootstrap failed" >&2; return 1; }
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
        docker_log "base filesystem ready in $((SECONDS - started)) s ($(du -h "$tarball" | cut -f1))"
    fi
    echo "$tarball"
}

# The base image on the engine at DOCKER_HOST (imported from the tarball when missing).
docker_ensure_base() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
    local tarball
    tarball="$(docker_base_tarball)" || return 1
    docker import "$tarball" "$BASE_IMAGE" >/dev/null
}

# docker build with the local base and progress on stderr. Args: tag, context, [docker build args].
docker_build() {
    local tag="$1" context="$2" started=$SECONDS
    shift 2
    docker_log "building image $tag"
    DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE=$BASE_IMAGE" -t "$tag" "$@" "$context" 2>&1 \
        | grep --line-buffered -E '^(Step|Successfully|E:|error|ERROR)' | sed -u 's/^/    /' >&2
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "error: building $tag failed" >&2; return 1; }
    docker_log "image $tag built in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}'))"
}

# The desktop image the docker platform runs (docker/desktop).
docker_ensure_desktop() {
    docker_ensure_base || return 1
    docker_build "$DESKTOP_IMAGE" "$(dirname "${BASH_SOURCE[0]}")/../../docker/desktop"
}
