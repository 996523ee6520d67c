-- A persistent home: one per user, template and agent (the agent keeps the directory or the
-- volume), shared by that user's sessions of that template there, one session at a time.
CREATE TABLE homes (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- By name, so a template deleted and made again finds its users' homes.
    template_name TEXT NOT NULL,
    agent_id      TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    state         TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'deleting')),
    -- Why the last deletion did not happen, if it did not.
    state_reason  TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (owner_id, template_name, agent_id)
);

CREATE INDEX idx_homes_agent_id ON homes (agent_id);

ALTER TABLE sessions ADD COLUMN home_id UUID REFERENCES homes (id) ON DELETE SET NULL;
CREATE INDEX idx_sessions_home_id ON sessions (home_id) WHERE home_id IS NOT NULL;
