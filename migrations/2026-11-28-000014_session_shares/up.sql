-- A desktop its owner shares with another user, to watch ('view') or to use ('control').
-- Revoking deletes the row; the audit log keeps the history.
CREATE TABLE session_shares (
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode       TEXT NOT NULL CHECK (mode IN ('view', 'control')),
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, user_id)
);
-- "Shared with me", newest first.
CREATE INDEX idx_session_shares_user ON session_shares (user_id, created_at DESC);

-- Who watches which desktop now: one row per open viewer stream, written by the replica
-- whose tunnel carries it. Rows of a replica that stopped beating are not counted: a crash
-- cannot leave a ghost viewer. A departure recorded before its arrival (two store threads)
-- leaves the row with `left_at` set, never counted; retention removes such rows and those of
-- replicas that left.
CREATE TABLE session_viewers (
    id           UUID PRIMARY KEY,
    session_id   UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    replica_id   UUID NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('view', 'control')),
    ip           TEXT,
    connected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    left_at      TIMESTAMPTZ
);
CREATE INDEX idx_session_viewers_session ON session_viewers (session_id);
