CREATE TABLE sessions (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template_id     UUID REFERENCES templates (id) ON DELETE SET NULL,
    -- Kept so a session still says what it ran after its template is deleted.
    template_name   TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'creating', 'running', 'degraded', 'lost',
                                     'terminating', 'terminated', 'failed')),
    state_reason    TEXT,
    -- {"cpu": "2", "memory": "4Gi"}
    resources       JSONB NOT NULL DEFAULT '{}',
    persistent_home BOOLEAN NOT NULL DEFAULT true,
    agent_id        TEXT REFERENCES agents (agent_id) ON DELETE SET NULL,
    platform        TEXT NOT NULL DEFAULT 'kubernetes',
    region          TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    terminated_at   TIMESTAMPTZ
);

CREATE INDEX idx_sessions_agent_id ON sessions (agent_id);
CREATE INDEX idx_sessions_platform ON sessions (platform);
CREATE INDEX idx_sessions_owner_id ON sessions (owner_id, created_at DESC);
CREATE INDEX idx_sessions_state ON sessions (state);

CREATE TRIGGER sessions_touch_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION streamspace_touch_updated_at();
