# schemathesis (PyPI, pinned, in a virtualenv kept in the cache) against the real control plane
# and its own API document: every operation with generated valid and invalid input, bounded in
# examples (scripts/lib/schemathesis.toml) and in time. Fails on a 500, a status or a body the
# document does not allow, input the document allows refused or input it forbids accepted.
# Sourced by scripts/test after `cargo build --bins`.

SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/streamspace/schemathesis-$SCHEMATHESIS_VERSION"
# A bound, not a target: the run takes about a minute here.
SCHEMATHESIS_TIME_LIMIT=300

ensure_schemathesis() {
    [ -x "$SCHEMATHESIS_VENV/bin/st" ] && return
    log "installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $SCHEMATHESIS_VENV"
    rm -rf "$SCHEMATHESIS_VENV"
    /usr/bin/python3 -m venv "$SCHEMATHESIS_VENV"
    "$SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

check_api_contract() {
    ensure_schemathesis
    log "schemathesis against the control plane's API document"
    local db=api_contract dir port base admin other
    dir="$(mktemp -d /tmp/streamspace-schemathesis.XXXXXX)"
    PGOPTIONS=--client-min-messages=warning psql "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    port="$(free_port)"
    base="http://127.0.0.1:$port"
    DATABASE_URL="${DATABASE_URL%/*}/$db" JWT_SECRET="$(head -c 32 /dev/urandom | base64)" \
        LISTEN_ADDR="127.0.0.1:$port" STREAMSPACE_ADMIN_PASSWORD=schemathesis-admin \
        STATIC_DIR="$ROOT/static" "$ROOT/target/debug/streamspace-control-plane" >"$dir/control-plane.log" 2>&1 &
    local pid=$!
    on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $dir; psql '$DATABASE_URL' -q -c 'DROP DATABASE IF EXISTS $db' 2>/dev/null"
    local i
    for i in $(seq 100); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
    curl -fsS "$base/readyz" >/dev/null || { cat "$dir/control-plane.log"; die "the control plane did not start"; }
    login() { # user password
        curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
            -d "{\"username\":\"$1\",\"password\":\"$2\"}" | json '["token"]'
    }
    admin="$(login admin schemathesis-admin)"
    # Something for the generated requests to find.
    curl -fsS "$base/api/v1/templates" -H "authorization: Bearer $admin" -H 'content-type: application/json' \
        -d '{"name":"xterm","image":"xterm","platforms":["local"]}' >/dev/null
    curl -fsS "$base/api/v1/agents/register" -H "authorization: Bearer $admin" -H 'content-type: application/json' \
        -d '{"agent_id":"agent-1","platform":"local"}' >/dev/null
    curl -fsS "$base/api/v1/users" -H "authorization: Bearer $admin" -H 'content-type: application/json' \
        -d '{"username":"second-admin","password":"second-admin-password","role":"admin"}' >/dev/null
    other="$(login second-admin second-admin-password)"
    run_schemathesis() { # token, filters...
        local token="$1"; shift
        (cd "$dir" && timeout "$SCHEMATHESIS_TIME_LIMIT" "$SCHEMATHESIS_VENV/bin/st" \
            --config-file "$ROOT/scripts/lib/schemathesis.toml" run "$base/api/v1/openapi.json" \
            -H "Authorization: Bearer $token" --checks all --workers 2 --request-timeout 20 \
            --no-color --seed 1 "$@") || { tail -n 40 "$dir/control-plane.log"; die "schemathesis found the API at odds with its document (above)"; }
    }
    # Changing one's own password (or an admin's, which the generated requests can find) ends
    # the sign-in they run with: those two operations run last, with a sign-in of their own.
    run_schemathesis "$admin" --exclude-operation-id users_update --exclude-operation-id auth_change_password
    run_schemathesis "$other" --include-operation-id users_update --include-operation-id auth_change_password
}
