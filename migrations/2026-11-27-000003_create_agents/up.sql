CREATE TABLE agents (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id          TEXT NOT NULL UNIQUE CHECK (agent_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    platform          TEXT NOT NULL CHECK (platform IN ('kubernetes', 'local')),
    region            TEXT,
    status            TEXT NOT NULL DEFAULT 'offline'
                      CHECK (status IN ('online', 'warning', 'offline', 'error')),
    -- {"max_sessions": 20, "cpu": "16", "memory": "64Gi"} as announced in hello.
    capacity          JSONB NOT NULL DEFAULT '{}',
    metadata          JSONB NOT NULL DEFAULT '{}',
    -- Identifies the live WebSocket so a stale connection's cleanup cannot mark a
    -- reconnected agent offline.
    websocket_conn_id TEXT,
    last_heartbeat    TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_agents_status ON agents (status);
CREATE INDEX idx_agents_platform ON agents (platform);

CREATE TRIGGER agents_touch_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION streamspace_touch_updated_at();

-- One row per credential ever issued; an agent may hold two during a rotation.
CREATE TABLE agent_credentials (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id     TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    -- SHA-256 of the token: tokens are 256-bit random, so a slow hash adds nothing.
    token_hash   TEXT NOT NULL UNIQUE,
    -- First characters of the token, to tell credentials apart in listings.
    token_prefix TEXT NOT NULL,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE INDEX idx_agent_credentials_agent_id ON agent_credentials (agent_id);
