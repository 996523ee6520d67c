-- Login tokens issued before a password change stop working: the API compares a token's
-- issue time with this column.
ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE users SET password_changed_at = created_at;

CREATE FUNCTION streamspace_password_changed() RETURNS trigger AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        NEW.password_changed_at := now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_password_changed BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION streamspace_password_changed();
