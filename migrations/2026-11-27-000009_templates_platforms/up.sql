-- The platforms a template's image or program runs on (["kubernetes"], ["local"]); empty means any.
ALTER TABLE templates ADD COLUMN platforms JSONB NOT NULL DEFAULT '[]';
