-- Control-plane replicas sharing this database: each heartbeats its row and is dead once it
-- misses three beats. The replica that holds an agent's link is recorded with the agent.
CREATE TABLE replicas (
    id          UUID PRIMARY KEY,
    -- Where the other replicas reach it (the internal viewer bridge), e.g. http://10.0.0.7:8080.
    address     TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Shutting down: takes no new links.
    draining    BOOLEAN NOT NULL DEFAULT false
);

ALTER TABLE agents ADD COLUMN replica_id UUID;
CREATE INDEX idx_agents_replica ON agents (replica_id) WHERE replica_id IS NOT NULL;

-- Viewer tokens are good for one connection, whichever replica it reaches.
CREATE TABLE spent_viewer_tokens (
    jti         UUID PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_spent_viewer_tokens_expires ON spent_viewer_tokens (expires_at);
