DROP TRIGGER users_password_changed ON users;
DROP FUNCTION streamspace_password_changed();
ALTER TABLE users DROP COLUMN password_changed_at;
