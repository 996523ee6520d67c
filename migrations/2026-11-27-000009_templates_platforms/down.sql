ALTER TABLE templates DROP COLUMN platforms;
