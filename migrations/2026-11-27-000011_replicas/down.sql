DROP TABLE spent_viewer_tokens;
DROP INDEX idx_agents_replica;
ALTER TABLE agents DROP COLUMN replica_id;
DROP TABLE replicas;
