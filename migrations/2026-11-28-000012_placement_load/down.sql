DROP INDEX idx_agents_placement;
DROP TRIGGER sessions_count_active ON sessions;
DROP FUNCTION streamspace_count_active_sessions();
DROP FUNCTION streamspace_session_is_active(TEXT);
ALTER TABLE agents DROP COLUMN load, DROP COLUMN max_sessions, DROP COLUMN active_sessions;
