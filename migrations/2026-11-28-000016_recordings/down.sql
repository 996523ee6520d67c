DROP TABLE recordings;
ALTER TABLE sessions DROP COLUMN recorded;
ALTER TABLE templates DROP COLUMN record;
