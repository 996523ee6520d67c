-- A session's or command's state changes several times in its life. An index on the state
-- makes every change write a new entry into every index of the table (no heap-only update):
-- five for a session, six for a command. Nothing looks rows up by state alone — each lookup
-- also names the agent, the home or the session, or reads the whole table (counts, retention)
-- — so these two indexes go, and session rows keep room on their page for their next version.
DROP INDEX idx_sessions_state;
DROP INDEX idx_agent_commands_status;
ALTER TABLE sessions SET (fillfactor = 85);
