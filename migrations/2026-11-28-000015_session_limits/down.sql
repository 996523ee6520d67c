DROP TRIGGER sessions_touch_updated_at ON sessions;
CREATE TRIGGER sessions_touch_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION streamspace_touch_updated_at();
DROP INDEX idx_sessions_limited;
ALTER TABLE sessions
    DROP COLUMN last_input_at,
    DROP COLUMN max_lifetime_seconds,
    DROP COLUMN idle_timeout_seconds;
ALTER TABLE templates DROP COLUMN max_lifetime_seconds, DROP COLUMN idle_timeout_seconds;
