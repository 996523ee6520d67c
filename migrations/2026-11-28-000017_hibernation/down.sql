CREATE OR REPLACE FUNCTION streamspace_session_is_active(state TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE AS
    $$ SELECT state IN ('pending', 'creating', 'running', 'degraded', 'terminating') $$;
-- Hibernated desktops cannot be woken without this migration: they end.
UPDATE sessions SET state = 'terminated', terminated_at = now(),
        state_reason = 'hibernated when hibernation was removed'
    WHERE state IN ('hibernating', 'hibernated', 'waking');
ALTER TABLE sessions DROP COLUMN idle_action;
ALTER TABLE templates DROP COLUMN idle_action;
ALTER TABLE sessions DROP COLUMN spec;
ALTER TABLE sessions DROP CONSTRAINT sessions_state_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_state_check
    CHECK (state IN ('pending', 'creating', 'running', 'degraded', 'lost', 'terminating',
                     'terminated', 'failed'));
