-- The limit sweep (every replica beat) read every session with limits that the table still
-- held, ended ones included: they stay for SESSION_RETENTION (30 days by default), so the
-- sweep grew with the history, not with the desktops running (74 ms a sweep with 300,000
-- ended sessions and 100 live ones). Its index now holds live sessions only. A session's end
-- stamps `terminated_at` once, so that one move writes index entries (no longer a heap-only
-- update); every move while it lives, and every input stamp, still is one.
DROP INDEX idx_sessions_limited;
CREATE INDEX idx_sessions_limited ON sessions (id)
    WHERE (idle_timeout_seconds IS NOT NULL OR max_lifetime_seconds IS NOT NULL)
      AND terminated_at IS NULL;
