DROP TABLE agent_credentials;
DROP TABLE agents;
