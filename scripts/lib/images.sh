# The two shipped images, built on the test run's Docker engine from the binaries cargo built
# (`--target prebuilt`: no Rust or Node image can be pulled here) and run as a user runs them:
# the control plane against the test Postgres serving its probes, pages and noVNC; an agent
# (PLATFORM=docker, the engine's socket mounted) linked to it and starting a real desktop.
# Sourced by scripts/test after start_docker_engine and `cargo build --bins`.

IMAGE_TAG=test
CP_CONTAINER=ss-image-check-control-plane
AGENT_CONTAINER=ss-image-check-agent

check_images() {
    source "$ROOT/scripts/lib/docker.sh"
    docker_build "streamspace/control-plane:$IMAGE_TAG" "$ROOT" -f "$ROOT/docker/control-plane.Dockerfile" \
        --target prebuilt --build-arg PROFILE=debug
    docker_build "streamspace/k8s-agent:$IMAGE_TAG" "$ROOT" -f "$ROOT/docker/k8s-agent.Dockerfile" \
        --target prebuilt --build-arg PROFILE=debug

    log "the control-plane image against the test Postgres"
    local db=images_check port health password base token agent_token session
    PGOPTIONS=--client-min-messages=warning psql "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    port="$(free_port)" health="$(free_port)"
    password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    base="http://127.0.0.1:$port"
    on_exit "docker rm -f $CP_CONTAINER $AGENT_CONTAINER >/dev/null 2>&1"
    docker run -d --name "$CP_CONTAINER" --network host -e DATABASE_URL="${DATABASE_URL%/*}/$db" \
        -e JWT_SECRET="$(head -c 32 /dev/urandom | base64)" -e LISTEN_ADDR="127.0.0.1:$port" \
        -e STREAMSPACE_ADMIN_PASSWORD="$password" "streamspace/control-plane:$IMAGE_TAG" >/dev/null
    image_wait_for "$CP_CONTAINER" "the control plane's /readyz" curl -fsS "$base/readyz"
    [ "$(docker inspect -f '{{.Config.User}}' "$CP_CONTAINER")" = 65532:65532 ] \
        || die "the control-plane image does not run as 65532"
    grep -q '<script type="module"' <<<"$(curl -fsS "$base/desktops")" || die "the control-plane image serves no pages"
    grep -q 'export default class RFB' <<<"$(curl -fsS "$base/novnc/core/rfb.js")" || die "the control-plane image serves no noVNC"
    curl -fsS "$base/swagger-ui/swagger-ui-bundle.js" >/dev/null || die "the control-plane image serves no API reference"
    token="$(curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$password\"}" | json '["token"]')"
    image_api() { # method path [body]
        curl -fsS -X "$1" "$base$2" -H "authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"}
    }

    log "the agent image (PLATFORM=docker) linked to it, starting a desktop"
    agent_token="$(image_api POST /api/v1/agents/register '{"agent_id":"image-check","platform":"docker"}' \
        | json '["credential"]["token"]')"
    local socket="${DOCKER_HOST#unix://}"
    docker run -d --name "$AGENT_CONTAINER" --network host --group-add "$(stat -c %g "$socket")" \
        -v "$socket:/var/run/docker.sock" -e AGENT_ID=image-check -e AGENT_TOKEN="$agent_token" \
        -e CONTROL_PLANE_URL="ws://127.0.0.1:$port" -e PLATFORM=docker -e HEALTH_ADDR="127.0.0.1:$health" \
        "streamspace/k8s-agent:$IMAGE_TAG" >/dev/null
    image_wait_for "$AGENT_CONTAINER" "the agent's /readyz" curl -fsS "http://127.0.0.1:$health/readyz"
    [ "$(docker inspect -f '{{.Config.User}}' "$AGENT_CONTAINER")" = 65532:65532 ] \
        || die "the agent image does not run as 65532"
    image_api GET /api/v1/agents/image-check | grep -q '"status":"online"' || die "the agent is not online"
    image_api POST /api/v1/templates "{\"name\":\"desktop\",\"image\":\"$DESKTOP_IMAGE\"}" >/dev/null
    session="$(image_api POST /api/v1/sessions '{"template":"desktop","persistent_home":false}' | json '["id"]')"
    image_wait_for "$AGENT_CONTAINER" "the desktop session" sh -c \
        "curl -fsS -H 'authorization: Bearer $token' '$base/api/v1/sessions/$session' | grep -q '\"state\":\"running\"'"
    docker ps --filter "name=ss-$session" --format '{{.Image}}' | grep -qx "$DESKTOP_IMAGE" \
        || die "no desktop container for session $session"
    image_api DELETE "/api/v1/sessions/$session" >/dev/null
    image_wait_for "$AGENT_CONTAINER" "the session's removal" sh -c "[ -z \"\$(docker ps -aq --filter name=ss-$session)\" ]"
    docker rm -f "$CP_CONTAINER" "$AGENT_CONTAINER" >/dev/null
    psql "$DATABASE_URL" -q -c "DROP DATABASE $db"
}

# Waits up to 60 s for a command to succeed; shows the container's log if it exits or never does.
image_wait_for() { # container, what, command
    local container="$1" what="$2"
    shift 2
    for _ in $(seq 1 600); do
        "$@" >/dev/null 2>&1 && return 0
        if [ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" != true ]; then
            docker logs --tail 20 "$container" >&2 || true
            die "$container exited waiting for $what (its last lines are above)"
        fi
        sleep 0.1
    done
    docker logs --tail 20 "$container" >&2 || true
    die "$what did not come up within 60 s"
}
