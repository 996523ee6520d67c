DROP FUNCTION streamspace_pick_agent(TEXT, TEXT[], TEXT, TEXT);
