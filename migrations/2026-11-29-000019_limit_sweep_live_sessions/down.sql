DROP INDEX idx_sessions_limited;
CREATE INDEX idx_sessions_limited ON sessions (id)
    WHERE idle_timeout_seconds IS NOT NULL OR max_lifetime_seconds IS NOT NULL;
