ALTER TABLE sessions DROP COLUMN home_id;
DROP TABLE homes;
