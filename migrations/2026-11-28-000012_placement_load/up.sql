-- Placement without scanning: each agent row carries its number of active sessions, kept
-- exact by a trigger in the same transaction as every session insert, state change and
-- delete, and its announced capacity as a column, so the least-loaded agent with room is the
-- first entry of one partial index and a placement locks that one row only.
ALTER TABLE agents
    ADD COLUMN active_sessions INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN max_sessions    BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN load            DOUBLE PRECISION GENERATED ALWAYS AS
        (CASE WHEN max_sessions > 0 THEN active_sessions::double precision / max_sessions
              ELSE 'Infinity'::double precision END) STORED;

UPDATE agents SET max_sessions = COALESCE((capacity ->> 'max_sessions')::bigint, 0);

-- The states that hold resources on an agent (SessionState::ACTIVE; a test checks they agree).
CREATE FUNCTION streamspace_session_is_active(state TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE AS
    $$ SELECT state IN ('pending', 'creating', 'running', 'degraded', 'terminating') $$;

UPDATE agents a SET active_sessions = (
    SELECT count(*) FROM sessions s
    WHERE s.agent_id = a.agent_id AND streamspace_session_is_active(s.state));

CREATE FUNCTION streamspace_count_active_sessions() RETURNS TRIGGER
    LANGUAGE plpgsql AS $$
DECLARE
    -- OLD is NULL on INSERT and NEW on DELETE.
    was BOOLEAN := COALESCE(OLD.agent_id IS NOT NULL AND streamspace_session_is_active(OLD.state), false);
    is_now BOOLEAN := COALESCE(NEW.agent_id IS NOT NULL AND streamspace_session_is_active(NEW.state), false);
BEGIN
    IF was AND (NOT is_now OR NEW.agent_id IS DISTINCT FROM OLD.agent_id) THEN
        UPDATE agents SET active_sessions = active_sessions - 1 WHERE agent_id = OLD.agent_id;
    END IF;
    IF is_now AND (NOT was OR NEW.agent_id IS DISTINCT FROM OLD.agent_id) THEN
        UPDATE agents SET active_sessions = active_sessions + 1 WHERE agent_id = NEW.agent_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_count_active AFTER INSERT OR DELETE OR UPDATE OF state, agent_id
    ON sessions FOR EACH ROW EXECUTE FUNCTION streamspace_count_active_sessions();

CREATE INDEX idx_agents_placement ON agents (load, active_sessions, agent_id)
    WHERE status = 'online';
