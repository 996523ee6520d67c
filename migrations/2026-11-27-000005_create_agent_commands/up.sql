CREATE TABLE agent_commands (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    command_id   UUID NOT NULL UNIQUE,
    agent_id     TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    session_id   UUID REFERENCES sessions (id) ON DELETE SET NULL,
    command_type TEXT NOT NULL,
    -- The exact wire message, so redelivery sends what was first sent.
    payload      JSONB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'ack', 'completed', 'failed', 'timeout')),
    result       JSONB,
    error        TEXT,
    -- How many times it was handed to a connection (redelivery counts).
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at      TIMESTAMPTZ,
    acked_at     TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    timeout_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX idx_agent_commands_agent_id ON agent_commands (agent_id);
CREATE INDEX idx_agent_commands_status ON agent_commands (status);
-- Redelivery on reconnect and the timeout sweep read only unfinished commands.
CREATE INDEX idx_agent_commands_unfinished ON agent_commands (agent_id, created_at)
    WHERE status IN ('pending', 'sent', 'ack');
CREATE INDEX idx_agent_commands_session_id ON agent_commands (session_id);
