-- Placement as a function, so that the creation statement calling it can be prepared once
-- per connection (parsed and planned once, not at every creation) without a kept plan that
-- goes wrong as the fleet grows. A plan Postgres keeps was made for the table as it was: on
-- a fleet of eight it sorts the online agents, and with ten thousand it would go on sorting
-- them all until the table is next analysed. Without sorts the only plan left is the walk of
-- `idx_agents_placement` in its order, stopping at the first suitable agent not held by
-- another placement: right for any size. One agent asked for by name is found by its key.
CREATE FUNCTION streamspace_pick_agent(want_platform TEXT, want_platforms TEXT[],
                                       want_region TEXT, only_agent TEXT)
    RETURNS TABLE (agent_id TEXT, platform TEXT, region TEXT, max_sessions BIGINT,
                   active_sessions INTEGER)
    LANGUAGE plpgsql ROWS 1
    SET enable_sort = off
AS $$
BEGIN
    IF only_agent IS NOT NULL THEN
        RETURN QUERY SELECT a.agent_id, a.platform, a.region, a.max_sessions, a.active_sessions
            FROM agents a
            WHERE a.agent_id = only_agent AND a.status = 'online'
              AND a.active_sessions < a.max_sessions
              AND (want_platform IS NULL OR a.platform = want_platform)
              AND (cardinality(want_platforms) = 0 OR a.platform = ANY(want_platforms))
              AND (want_region IS NULL OR a.region = want_region)
            FOR NO KEY UPDATE OF a SKIP LOCKED;
        RETURN;
    END IF;
    RETURN QUERY SELECT a.agent_id, a.platform, a.region, a.max_sessions, a.active_sessions
        FROM agents a
        WHERE a.status = 'online' AND a.active_sessions < a.max_sessions
          AND (want_platform IS NULL OR a.platform = want_platform)
          AND (cardinality(want_platforms) = 0 OR a.platform = ANY(want_platforms))
          AND (want_region IS NULL OR a.region = want_region)
        ORDER BY a.load, a.active_sessions, a.agent_id
        LIMIT 1
        FOR NO KEY UPDATE OF a SKIP LOCKED;
END $$;
