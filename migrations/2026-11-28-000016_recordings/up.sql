-- Templates may have every viewer's stream of their desktops recorded; a session copies the
-- choice when it is made. One row per recorded stream; its bytes are a file under
-- RECORDING_DIR.
ALTER TABLE templates ADD COLUMN record BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sessions ADD COLUMN recorded BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE recordings (
    id          UUID PRIMARY KEY,
    session_id  UUID REFERENCES sessions (id) ON DELETE SET NULL,
    user_id     UUID REFERENCES users (id) ON DELETE SET NULL,
    username    TEXT NOT NULL,
    template    TEXT NOT NULL,
    file        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at    TIMESTAMPTZ,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    bytes       BIGINT NOT NULL DEFAULT 0,
    complete    BOOLEAN NOT NULL DEFAULT true
);
CREATE INDEX idx_recordings_started ON recordings (started_at DESC, id DESC);
CREATE INDEX idx_recordings_session ON recordings (session_id);
