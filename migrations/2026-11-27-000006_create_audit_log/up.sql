CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- e.g. login, login_failed, session_create, vnc_connect, agent_credential_rotate
    action         TEXT NOT NULL,
    -- Who did it: a user, an agent, or neither (the system).
    actor_user_id  UUID,
    actor_username TEXT,
    actor_agent_id TEXT,
    target_type    TEXT,
    target_id      TEXT,
    -- Action-specific detail, e.g. bytes and duration of a VNC connection.
    details        JSONB NOT NULL DEFAULT '{}',
    source_ip      TEXT
);

-- Deliberately no foreign keys: the log outlives the users and agents it names.
CREATE INDEX idx_audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX idx_audit_log_action ON audit_log (action, at DESC);
CREATE INDEX idx_audit_log_actor_user_id ON audit_log (actor_user_id, at DESC);
