CREATE TABLE templates (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name              TEXT NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    display_name      TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    -- Container image (kubernetes) or desktop program (local).
    image             TEXT NOT NULL,
    vnc_port          INTEGER NOT NULL DEFAULT 5900 CHECK (vnc_port BETWEEN 1 AND 65535),
    -- {"cpu": "1", "memory": "2Gi"}: used when a session asks for nothing else.
    default_resources JSONB NOT NULL DEFAULT '{}',
    -- {"NAME": "value"}: extra environment for the desktop.
    env               JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TRIGGER templates_touch_updated_at BEFORE UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION streamspace_touch_updated_at();
