-- Templates may stop their desktops after a time without viewer input, or after a maximum
-- lifetime. A session copies its template's limits when it is made (a later change of the
-- template does not shorten or lengthen desktops already running) and keeps when a viewer
-- last gave input.
ALTER TABLE templates
    ADD COLUMN idle_timeout_seconds INTEGER CHECK (idle_timeout_seconds > 0),
    ADD COLUMN max_lifetime_seconds INTEGER CHECK (max_lifetime_seconds > 0);
ALTER TABLE sessions
    ADD COLUMN idle_timeout_seconds INTEGER,
    ADD COLUMN max_lifetime_seconds INTEGER,
    ADD COLUMN last_input_at TIMESTAMPTZ;
-- The sessions the limit sweep looks at. Only columns no update changes: a state change or
-- an input stamp stays a heap-only update.
CREATE INDEX idx_sessions_limited ON sessions (id)
    WHERE idle_timeout_seconds IS NOT NULL OR max_lifetime_seconds IS NOT NULL;
-- An input stamp is not a change of the session: `updated_at` (which judges whether an
-- agent's inventory is newer than the row) stays.
DROP TRIGGER sessions_touch_updated_at ON sessions;
CREATE TRIGGER sessions_touch_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW WHEN (OLD.last_input_at IS NOT DISTINCT FROM NEW.last_input_at)
    EXECUTE FUNCTION streamspace_touch_updated_at();
