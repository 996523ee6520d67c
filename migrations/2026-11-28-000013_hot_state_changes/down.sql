ALTER TABLE sessions RESET (fillfactor);
CREATE INDEX idx_agent_commands_status ON agent_commands (status);
CREATE INDEX idx_sessions_state ON sessions (state);
