-- Agents may run sessions as Docker containers.
ALTER TABLE agents DROP CONSTRAINT agents_platform_check;
ALTER TABLE agents ADD CONSTRAINT agents_platform_check
    CHECK (platform IN ('kubernetes', 'docker', 'local'));
