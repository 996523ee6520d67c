-- Hibernation: a desktop's workload stops while its home stays, and it wakes on the agent
-- that keeps that home. `hibernating` and `waking` hold resources on the agent (a command is
-- stopping or starting the workload); `hibernated` holds only its home.
ALTER TABLE sessions DROP CONSTRAINT sessions_state_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_state_check
    CHECK (state IN ('pending', 'creating', 'running', 'degraded', 'lost', 'terminating',
                     'terminated', 'failed', 'hibernating', 'hibernated', 'waking'));

-- What a wake sends the agent again: the desktop's own start, not its template as it is now
-- (the `create_session` command that carried it is pruned in time).
ALTER TABLE sessions ADD COLUMN spec JSONB;
UPDATE sessions s SET spec = (c.payload -> 'command') - 'action'
    FROM agent_commands c
    WHERE c.session_id = s.id AND c.command_type = 'create_session';

-- A template's idle timeout may hibernate its desktops instead of stopping them (those with
-- a persistent home; the others stop). A session copies the choice when it is made.
ALTER TABLE templates ADD COLUMN idle_action TEXT NOT NULL DEFAULT 'stop'
    CHECK (idle_action IN ('stop', 'hibernate'));
ALTER TABLE sessions ADD COLUMN idle_action TEXT NOT NULL DEFAULT 'stop';

-- The states that hold resources on an agent (SessionState::ACTIVE; a test checks they agree).
CREATE OR REPLACE FUNCTION streamspace_session_is_active(state TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE AS
    $$ SELECT state IN ('pending', 'creating', 'running', 'degraded', 'terminating',
                        'hibernating', 'waking') $$;
