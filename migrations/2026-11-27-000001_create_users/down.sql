DROP TABLE users;
DROP FUNCTION streamspace_touch_updated_at();
